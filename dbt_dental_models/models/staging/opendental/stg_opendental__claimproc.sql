with

source as (

    select * from {{ source('opendental', 'claimproc') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        claimprocnum as claim_procedure_id,
        {{ clean_fk('procnum') }} as procedure_id,
        {{ clean_fk('claimnum') }} as claim_id,
        patnum as patient_id,
        {{ clean_fk('provnum') }} as provider_id,
        {{ clean_fk('plannum') }} as insurance_plan_id,
        {{ clean_fk('claimpaymentnum') }} as claim_payment_id,
        {{ clean_fk('clinicnum') }} as clinic_id,

        ----------  enums
        status as claim_procedure_status_code,
        {{ decode('status', {0: 'NotReceived', 1: 'Received', 2: 'Preauth', 3: 'Adjustment',
                              4: 'Supplemental', 5: 'CapClaim', 6: 'Estimate', 7: 'CapComplete',
                              8: 'CapEstimate', 9: 'InsHist'}) }} as claim_procedure_status,

        ----------  numerics (-1 = blank override -> null)
        {{ to_money('feebilled') }} as fee_billed,
        {{ to_money('inspayest') }} as insurance_estimate,
        {{ to_money('inspayamt') }} as insurance_paid,
        {{ to_money('writeoff') }} as write_off,
        {{ to_money('dedapplied') }} as deductible_applied,
        {{ clean_override('copayamt') }} as copay_amount,
        {{ clean_override('allowedoverride') }} as allowed_override,
        {{ clean_override('percentage') }} as coverage_percent,

        ----------  booleans: what the claimproc counts as
        status in (1, 4) as is_insurance_payment,
        status in (0, 1, 4) and claimnum <> 0 as is_write_off,

        ----------  dates
        {{ clean_date('procdate') }} as procedure_date,
        {{ clean_date('datecp') }} as payment_date,
        {{ clean_date('dateentry') }} as entry_date,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
