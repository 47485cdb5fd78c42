-- Each patient with the guarantor (family head) whose account carries the family balance.
-- A guarantor of 0 or one pointing at a missing patient falls back to the patient themself.

with

patients as (

    select * from {{ ref('stg_opendental__patient') }}

),

families as (

    select
        patients.patient_id,
        patients.super_family_id,
        coalesce(guarantors.patient_id, patients.patient_id) as guarantor_id
    from patients
    left join patients as guarantors
        on patients.guarantor_id = guarantors.patient_id

)

select * from families
