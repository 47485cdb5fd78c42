with

source as (

    select * from {{ source('opendental', 'claim') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        claimnum as claim_id,
        patnum as patient_id,
        {{ clean_fk('plannum') }} as insurance_plan_id,
        {{ clean_fk('inssubnum') }} as insurance_subscriber_id,
        {{ clean_fk('provtreat') }} as treating_provider_id,
        {{ clean_fk('provbill') }} as billing_provider_id,
        {{ clean_fk('clinicnum') }} as clinic_id,

        ----------  enums (stored as strings in OpenDental)
        claimstatus as claim_status_code,
        case claimstatus
            when 'U' then 'Unsent'
            when 'H' then 'Hold'
            when 'W' then 'Waiting'
            when 'S' then 'Sent'
            when 'R' then 'Received'
            when 'I' then 'HoldInProcess'
            else 'Unknown'
        end as claim_status,
        case claimtype
            when 'P' then 'Primary'
            when 'S' then 'Secondary'
            when 'PreAuth' then 'PreAuth'
            when 'Cap' then 'Capitation'
            else 'Other'
        end as claim_type,

        ----------  numerics
        {{ to_money('claimfee') }} as claim_fee,
        {{ to_money('inspayest') }} as insurance_estimate,
        {{ to_money('inspayamt') }} as insurance_paid,
        {{ to_money('writeoff') }} as write_off,
        {{ to_money('dedapplied') }} as deductible_applied,

        ----------  dates
        {{ clean_date('dateservice') }} as service_date,
        {{ clean_date('datesent') }} as sent_date,
        {{ clean_date('datereceived') }} as received_date,
        {{ clean_date('secdateentry') }} as created_date,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
