-- Outstanding insurance claims aged from the date sent to the as-of date; definition in kpi_claim_aging.

with

as_of as (

    select {{ as_of_date() }} as as_of_date

),

outstanding as (

    select
        claims.claim_id,
        claims.patient_id,
        claims.insurance_plan_id,
        claims.claim_status,
        claims.sent_date,
        claims.claim_fee,
        claims.insurance_estimate,
        as_of.as_of_date,
        as_of.as_of_date - claims.sent_date as days_outstanding
    from {{ ref('stg_opendental__claim') }} as claims
    cross join as_of
    where
        claims.claim_status_code in ('S', 'W')
        and claims.claim_type in ('Primary', 'Secondary')
        and claims.sent_date is not null
        and claims.sent_date <= as_of.as_of_date

)

select
    outstanding.*,
    case
        when outstanding.days_outstanding <= 30 then '0-30'
        when outstanding.days_outstanding <= 60 then '31-60'
        when outstanding.days_outstanding <= 90 then '61-90'
        else '90+'
    end as aging_bucket
from outstanding
