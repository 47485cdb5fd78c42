with

source as (

    select * from {{ source('opendental', 'inssub') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids (SubscriberID is never copied into raw)
        inssubnum as insurance_subscriber_id,
        {{ clean_fk('plannum') }} as insurance_plan_id,
        {{ clean_fk('subscriber') }} as subscriber_patient_id,

        ----------  dates
        {{ clean_date('dateeffective') }} as effective_date,
        {{ clean_date('dateterm') }} as termination_date,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
