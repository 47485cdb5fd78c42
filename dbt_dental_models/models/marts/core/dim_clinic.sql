-- Clinics, plus the implicit "practice" row (clinic_id 0) that single-location practices use
-- everywhere (OpenDental stores ClinicNum = 0 there and leaves the clinic table empty).

select
    clinic_id,
    clinic_name,
    clinic_abbr,
    city,
    state,
    is_hidden
from {{ ref('stg_opendental__clinic') }}

union all

select
    0 as clinic_id,
    'Practice (no clinic)' as clinic_name,
    null as clinic_abbr,
    null as city,
    null as state,
    false as is_hidden
