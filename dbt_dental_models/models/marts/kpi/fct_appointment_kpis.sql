-- Appointment KPIs per day and operatory; definition in kpi_appointments.

with

appointments as (

    select * from {{ ref('int_appointment_outcomes') }}
    where is_on_schedule and appointment_date is not null

),

-- practice rows of a day: Open blocks give the opening hours; a Closed or Holiday row closes the day
practice_hours as (

    select
        schedule_date,
        case
            when bool_or(schedule_status in ('Closed', 'Holiday')) then 0
            else sum(scheduled_minutes) filter (where schedule_status = 'Open')
        end as open_minutes
    from {{ ref('stg_opendental__schedule') }}
    where schedule_type = 'Practice'
    group by schedule_date

),

daily as (

    select
        appointment_date,
        operatory_id,
        count(*) as scheduled_appointments,
        count(*) filter (where is_completed) as completed_appointments,
        count(*) filter (where is_broken) as broken_appointments,
        count(*) filter (where is_no_show) as no_show_appointments,
        sum(booked_minutes) as booked_minutes
    from appointments
    group by appointment_date, operatory_id

)

select
    {{ surrogate_key(['daily.appointment_date', 'daily.operatory_id']) }}
        as appointment_kpi_key,
    daily.appointment_date,
    daily.operatory_id,
    daily.scheduled_appointments,
    daily.completed_appointments,
    daily.broken_appointments,
    daily.no_show_appointments,
    daily.booked_minutes,
    coalesce(practice_hours.open_minutes, {{ var('default_operatory_minutes') }}) as available_minutes,
    round(
        daily.booked_minutes::numeric
        / nullif(coalesce(practice_hours.open_minutes, {{ var('default_operatory_minutes') }}), 0),
        4
    ) as utilisation
from daily
left join practice_hours
    on daily.appointment_date = practice_hours.schedule_date
