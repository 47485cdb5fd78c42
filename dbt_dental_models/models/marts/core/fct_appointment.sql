select
    appointment_id,
    patient_id,
    provider_id,
    hygienist_id,
    operatory_id,
    appointment_date,
    appointment_at,
    appointment_status,
    duration_minutes,
    booked_minutes,
    is_hygiene,
    is_new_patient,
    is_on_schedule,
    is_completed,
    is_broken,
    is_no_show,
    coalesce(clinic_id, 0) as clinic_id
from {{ ref('int_appointment_outcomes') }}
