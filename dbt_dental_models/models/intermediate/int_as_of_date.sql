-- The default as-of date of the aging KPIs: the latest date with financial activity in the data
-- (completed procedure, adjustment, patient payment or insurance payment), so a rerun on the same
-- data gives the same numbers. Override with --vars '{as_of_date: 2026-01-31}'.

with

activity_dates as (

    select max(transaction_date) as latest_date
    from {{ ref('int_transactions') }}

)

select coalesce(latest_date, current_date) as as_of_date
from activity_dates
