-- New patients per month; definition in kpi_new_patients.

with

first_visits as (

    select
        patient_id,
        min(procedure_date) as first_visit_date
    from {{ ref('stg_opendental__procedurelog') }}
    where is_complete and procedure_date is not null
    group by patient_id

)

select
    date_trunc('month', first_visit_date)::date as month_start,
    count(*) as new_patients
from first_visits
group by date_trunc('month', first_visit_date)::date
