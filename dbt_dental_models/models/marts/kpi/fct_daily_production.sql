-- One row per day and provider with any production activity; definition in the doc block kpi_production.

with

transactions as (

    select * from {{ ref('int_transactions') }}
    where transaction_type in ('production', 'write_off', 'adjustment')

),

daily as (

    select
        transaction_date as production_date,
        provider_id,
        sum(amount) filter (where transaction_type = 'production') as gross_production,
        sum(amount) filter (where transaction_type = 'write_off') as write_offs,
        sum(amount) filter (where transaction_type = 'adjustment') as adjustments,
        count(*) filter (where transaction_type = 'production') as completed_procedures
    from transactions
    group by transaction_date, provider_id

)

select
    {{ surrogate_key(['production_date', 'provider_id']) }} as production_key,
    production_date,
    provider_id,
    coalesce(gross_production, 0) as gross_production,
    coalesce(write_offs, 0) as write_offs,
    coalesce(adjustments, 0) as adjustments,
    coalesce(gross_production, 0) + coalesce(adjustments, 0) - coalesce(write_offs, 0) as net_production,
    completed_procedures
from daily
