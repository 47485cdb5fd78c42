-- One row per calendar day from the first recorded activity to a year after the as-of date.

with

bounds as (

    select
        least(min(transaction_date), {{ as_of_date() }}) as first_date,
        {{ as_of_date() }} + 365 as last_date
    from {{ ref('int_transactions') }}

),

days as (

    select cast(generate_series(first_date, last_date, interval '1 day') as date) as date_day
    from bounds

)

select
    date_day,
    cast(extract(year from date_day) as int) as year_number,
    cast(extract(month from date_day) as int) as month_number,
    cast(date_trunc('month', date_day) as date) as month_start,
    cast(extract(isodow from date_day) as int) as iso_day_of_week,
    to_char(date_day, 'Dy') as day_name,
    extract(isodow from date_day) in (6, 7) as is_weekend
from days
