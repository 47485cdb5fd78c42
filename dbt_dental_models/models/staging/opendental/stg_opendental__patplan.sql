with

source as (

    select * from {{ source('opendental', 'patplan') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        patplannum as patient_plan_id,
        patnum as patient_id,
        {{ clean_fk('inssubnum') }} as insurance_subscriber_id,

        ----------  numerics
        ordinal as coverage_order,

        ----------  enums
        {{ decode('relationship', {0: 'Self', 1: 'Spouse', 2: 'Child', 3: 'Employee', 4: 'HandicapDep',
                                    5: 'SignifOther', 6: 'InjuredPlaintiff', 7: 'LifePartner',
                                    8: 'Dependent'}) }} as relationship,

        ----------  booleans
        {{ to_bool('ispending') }} as is_pending,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
