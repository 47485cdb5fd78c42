with

source as (

    select * from {{ source('opendental', 'adjustment') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        adjnum as adjustment_id,
        patnum as patient_id,
        {{ clean_fk('provnum') }} as provider_id,
        {{ clean_fk('procnum') }} as procedure_id,
        {{ clean_fk('adjtype') }} as adjustment_type_id,
        {{ clean_fk('clinicnum') }} as clinic_id,

        ----------  numerics (negative = credit to the patient)
        {{ to_money('adjamt') }} as adjustment_amount,

        ----------  dates
        {{ clean_date('adjdate') }} as adjustment_date,
        {{ clean_date('procdate') }} as procedure_date,
        {{ clean_date('dateentry') }} as entry_date,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
