select
    provider_id,
    provider_abbr,
    provider_name,
    specialty_id,
    is_secondary as is_hygienist,
    is_hidden,
    is_not_person,
    is_deleted,
    termination_date
from {{ ref('stg_opendental__provider') }}
