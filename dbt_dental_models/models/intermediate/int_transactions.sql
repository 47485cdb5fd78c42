{{ config(materialized="table") }}

-- Every money movement of the practice, one row each, attributed to a patient, a provider and a date.
-- This is the single definition behind production, collections and patient balances:
--   production         completed procedure (ProcStatus 2): fee x units, on ProcDate, procedure's provider
--   write_off          claimproc WriteOff on a claim, Status 0/1/4 (NotReceived, Received, Supplemental),
--                      on the procedure date (claimproc ProcDate), claimproc's provider
--   adjustment         adjustment AdjAmt (signed), on AdjDate, adjustment's provider
--   patient_payment    paysplit SplitAmt, on DatePay, split's provider (income transfers flagged)
--   insurance_payment  claimproc InsPayAmt, Status 1/4 (Received, Supplemental), on DateCP, claimproc's provider
-- balance_effect is what the row does to the patient's balance (charges +, credits -).

with

procedures as (

    select
        'production' as transaction_type,
        procedure_id as source_id,
        patient_id,
        provider_id,
        clinic_id,
        procedure_date as transaction_date,
        production_amount as amount,
        production_amount as balance_effect,
        false as is_income_transfer
    from {{ ref('stg_opendental__procedurelog') }}
    where is_complete

),

write_offs as (

    select
        'write_off' as transaction_type,
        claim_procedure_id as source_id,
        patient_id,
        provider_id,
        clinic_id,
        procedure_date as transaction_date,
        write_off as amount,
        -write_off as balance_effect,
        false as is_income_transfer
    from {{ ref('stg_opendental__claimproc') }}
    where is_write_off and write_off <> 0

),

adjustments as (

    select
        'adjustment' as transaction_type,
        adjustment_id as source_id,
        patient_id,
        provider_id,
        clinic_id,
        adjustment_date as transaction_date,
        adjustment_amount as amount,
        adjustment_amount as balance_effect,
        false as is_income_transfer
    from {{ ref('stg_opendental__adjustment') }}

),

patient_payments as (

    select
        'patient_payment' as transaction_type,
        paysplits.paysplit_id as source_id,
        paysplits.patient_id,
        paysplits.provider_id,
        paysplits.clinic_id,
        paysplits.payment_date as transaction_date,
        paysplits.split_amount as amount,
        -paysplits.split_amount as balance_effect,
        coalesce(payments.is_income_transfer, false) as is_income_transfer
    from {{ ref('stg_opendental__paysplit') }} as paysplits
    left join {{ ref('stg_opendental__payment') }} as payments
        on paysplits.payment_id = payments.payment_id

),

insurance_payments as (

    select
        'insurance_payment' as transaction_type,
        claim_procedure_id as source_id,
        patient_id,
        provider_id,
        clinic_id,
        payment_date as transaction_date,
        insurance_paid as amount,
        -insurance_paid as balance_effect,
        false as is_income_transfer
    from {{ ref('stg_opendental__claimproc') }}
    where is_insurance_payment and insurance_paid <> 0

),

unioned as (

    select * from procedures
    union all
    select * from write_offs
    union all
    select * from adjustments
    union all
    select * from patient_payments
    union all
    select * from insurance_payments

)

select
    *,
    transaction_type || '-' || source_id as transaction_id
from unioned
where transaction_date is not null
