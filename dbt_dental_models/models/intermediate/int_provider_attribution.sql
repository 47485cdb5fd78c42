-- Provider attribution of each completed procedure: the procedure's provider does the work; the
-- patient's primary provider is kept beside it for "my patients" views.

with

procedures as (

    select * from {{ ref('stg_opendental__procedurelog') }}
    where is_complete

),

patients as (

    select * from {{ ref('stg_opendental__patient') }}

)

select
    procedures.procedure_id,
    procedures.patient_id,
    procedures.provider_id as performing_provider_id,
    patients.primary_provider_id,
    procedures.procedure_date
from procedures
left join patients
    on procedures.patient_id = patients.patient_id
