-- Insurance billed vs paid per carrier and month of service; definition in kpi_insurance.

with

claims as (

    select * from {{ ref('fct_claim') }}
    where claim_type in ('Primary', 'Secondary') and service_date is not null

),

plans as (

    select * from {{ ref('dim_insurance_plan') }}

),

monthly as (

    select
        date_trunc('month', claims.service_date)::date as service_month,
        plans.carrier_id,
        count(*) as claims,
        sum(claims.claim_fee) as billed,
        sum(claims.insurance_paid) as paid,
        sum(claims.write_off) as written_off
    from claims
    left join plans
        on claims.insurance_plan_id = plans.insurance_plan_id
    group by 1, 2

)

select
    {{ surrogate_key(['service_month', 'carrier_id']) }} as paid_vs_billed_key,
    service_month,
    carrier_id,
    claims,
    billed,
    paid,
    written_off,
    round(paid / nullif(billed, 0), 4) as paid_ratio
from monthly
