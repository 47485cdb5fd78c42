-- Provider performance per month; definition in kpi_provider_performance.

with

production as (

    select
        date_trunc('month', production_date)::date as month_start,
        provider_id,
        sum(gross_production) as gross_production,
        sum(adjustments) as adjustments,
        sum(write_offs) as write_offs,
        sum(net_production) as net_production,
        sum(completed_procedures) as completed_procedures
    from {{ ref('fct_daily_production') }}
    group by 1, 2

),

collections as (

    select
        date_trunc('month', collection_date)::date as month_start,
        provider_id,
        sum(total_collections) as collections
    from {{ ref('fct_daily_collections') }}
    group by 1, 2

),

visits as (

    select
        date_trunc('month', appointment_date)::date as month_start,
        provider_id,
        count(*) filter (where is_completed) as completed_appointments,
        count(*) filter (where is_broken) as broken_appointments,
        count(distinct patient_id) filter (where is_completed) as patients_seen
    from {{ ref('int_appointment_outcomes') }}
    where appointment_date is not null
    group by 1, 2

),

keys as (

    select
        month_start,
        provider_id
    from production
    union
    select
        month_start,
        provider_id
    from collections
    union
    select
        month_start,
        provider_id
    from visits

)

select
    {{ surrogate_key(['keys.month_start', 'keys.provider_id']) }}
        as provider_month_key,
    keys.month_start,
    keys.provider_id,
    coalesce(production.gross_production, 0) as gross_production,
    coalesce(production.adjustments, 0) as adjustments,
    coalesce(production.write_offs, 0) as write_offs,
    coalesce(production.net_production, 0) as net_production,
    coalesce(production.completed_procedures, 0) as completed_procedures,
    coalesce(collections.collections, 0) as collections,
    coalesce(visits.completed_appointments, 0) as completed_appointments,
    coalesce(visits.broken_appointments, 0) as broken_appointments,
    coalesce(visits.patients_seen, 0) as patients_seen
from keys
left join production
    on
        keys.month_start = production.month_start
        and keys.provider_id is not distinct from production.provider_id
left join collections
    on
        keys.month_start = collections.month_start
        and keys.provider_id is not distinct from collections.provider_id
left join visits
    on
        keys.month_start = visits.month_start
        and keys.provider_id is not distinct from visits.provider_id
