-- What became of each appointment on the book: completed, broken (and whether it was a no-show,
-- i.e. the history records it as Missed rather than Cancelled), still scheduled.

with

appointments as (

    select * from {{ ref('stg_opendental__appointment') }}

),

history as (

    select
        aptnum as appointment_id,
        bool_or(histapptaction = 2) as was_missed,
        bool_or(histapptaction = 3) as was_cancelled
    from {{ source('opendental', 'histappointment') }}
    where _deleted_at is null
    group by aptnum

),

outcomes as (

    select
        appointments.appointment_id,
        appointments.patient_id,
        appointments.provider_id,
        appointments.hygienist_id,
        appointments.operatory_id,
        appointments.clinic_id,
        appointments.appointment_date,
        appointments.appointment_at,
        appointments.appointment_status,
        appointments.duration_minutes,
        appointments.is_hygiene,
        appointments.is_new_patient,
        appointments.appointment_status_code in (1, 2, 5) as is_on_schedule,
        appointments.appointment_status_code = 2 as is_completed,
        appointments.appointment_status_code = 5 as is_broken,
        appointments.appointment_status_code = 5 and coalesce(history.was_missed, false) as is_no_show,
        appointments.appointment_status_code = 1 as is_still_scheduled,
        case
            when appointments.appointment_status_code in (1, 2) then appointments.duration_minutes
            else 0
        end as booked_minutes
    from appointments
    left join history
        on appointments.appointment_id = history.appointment_id

)

select * from outcomes
