{{
    config(
        materialized='incremental',
        unique_key='procedure_id',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        post_hook=[
            "delete from {{ this }} where procedure_id in (select procnum from {{ source('opendental', 'procedurelog') }} where _deleted_at is not null)"
        ]
    )
}}

-- Every procedure (all statuses), with its insurance money. Incremental on the loader's _loaded_at:
-- rows the loader rewrote since the last build are merged; rows hard-deleted at the source are
-- removed by the post-hook.

with

procedures as (

    select * from {{ ref('stg_opendental__procedurelog') }}
    {% if is_incremental() %}
        where _loaded_at >= (
            select coalesce(max(built._loaded_at), '-infinity') from {{ this }} as built
        )
    {% endif %}

),

insurance as (

    select * from {{ ref('int_claim_payments_per_procedure') }}

)

select
    procedures.procedure_id,
    procedures.patient_id,
    procedures.provider_id,
    procedures.appointment_id,
    procedures.procedure_code_id,
    procedures.procedure_date,
    procedures.procedure_status,
    procedures.procedure_fee,
    procedures.production_amount,
    procedures.is_complete,
    procedures.is_deleted,
    procedures._loaded_at,
    coalesce(procedures.clinic_id, 0) as clinic_id,
    coalesce(insurance.fee_billed, 0) as insurance_fee_billed,
    coalesce(insurance.insurance_paid, 0) as insurance_paid,
    coalesce(insurance.write_off, 0) as insurance_write_off
from procedures
left join insurance
    on procedures.procedure_id = insurance.procedure_id
