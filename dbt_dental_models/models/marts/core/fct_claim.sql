with

claims as (

    select * from {{ ref('stg_opendental__claim') }}

),

claimprocs as (

    select
        claim_id,
        sum(fee_billed) as fee_billed,
        sum(insurance_paid) filter (where is_insurance_payment) as insurance_paid,
        sum(write_off) filter (where is_write_off) as write_off
    from {{ ref('stg_opendental__claimproc') }}
    where claim_id is not null
    group by claim_id

)

select
    claims.claim_id,
    claims.patient_id,
    claims.insurance_plan_id,
    claims.treating_provider_id,
    claims.claim_type,
    claims.claim_status,
    claims.service_date,
    claims.sent_date,
    claims.received_date,
    claims.claim_fee,
    claims.insurance_estimate,
    coalesce(claims.clinic_id, 0) as clinic_id,
    coalesce(claimprocs.insurance_paid, 0) as insurance_paid,
    coalesce(claimprocs.write_off, 0) as write_off
from claims
left join claimprocs
    on claims.claim_id = claimprocs.claim_id
