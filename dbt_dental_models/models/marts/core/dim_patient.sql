with

patients as (

    select * from {{ ref('stg_opendental__patient') }}

),

families as (

    select * from {{ ref('int_patient_families') }}

),

first_visits as (

    select
        patient_id,
        min(procedure_date) as first_completed_procedure_date
    from {{ ref('stg_opendental__procedurelog') }}
    where is_complete
    group by patient_id

)

select
    patients.patient_id,
    families.guarantor_id,
    patients.primary_provider_id,
    patients.secondary_provider_id,
    patients.clinic_id,
    patients.first_name,
    patients.last_name,
    patients.preferred_name,
    patients.patient_status,
    patients.gender,
    patients.birth_date,
    patients.first_visit_date,
    first_visits.first_completed_procedure_date,
    patients.created_date,
    patients.is_deleted,
    families.patient_id = families.guarantor_id as is_guarantor
from patients
inner join families
    on patients.patient_id = families.patient_id
left join first_visits
    on patients.patient_id = first_visits.patient_id
