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
-- a build merges the procedures the loader wrote since the last build, those whose claimprocs were
-- written or deleted since, and any the fact is missing (a row restored at the source); procedures
-- hard-deleted at the source are removed by the post-hook.

with

{% if is_incremental() %}
    cutoff as (

        select coalesce(max(built._loaded_at), '-infinity') as loaded_after
        from {{ this }} as built

    ),

    changed_procedures as (

        select procedurelog.procnum as procedure_id
        from {{ source('opendental', 'procedurelog') }} as procedurelog
        cross join cutoff
        where
            procedurelog._loaded_at >= cutoff.loaded_after
            or procedurelog._deleted_at >= cutoff.loaded_after

        union

        select claimproc.procnum as procedure_id
        from {{ source('opendental', 'claimproc') }} as claimproc
        cross join cutoff
        where
            claimproc.procnum <> 0
            and (
                claimproc._loaded_at >= cutoff.loaded_after
                or claimproc._deleted_at >= cutoff.loaded_after
            )

        union

        select staged.procedure_id
        from {{ ref('stg_opendental__procedurelog') }} as staged
        where not exists (
            select 1 from {{ this }} as built
            where built.procedure_id = staged.procedure_id
        )

    ),
{% endif %}

procedures as (

    select * from {{ ref('stg_opendental__procedurelog') }}
    {% if is_incremental() %}
        where procedure_id in (select changed.procedure_id from changed_procedures as changed)
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
    coalesce(procedures.clinic_id, 0) as clinic_id,
    procedures.procedure_date,
    procedures.procedure_status,
    procedures.procedure_fee,
    procedures.production_amount,
    coalesce(insurance.fee_billed, 0) as insurance_fee_billed,
    coalesce(insurance.insurance_paid, 0) as insurance_paid,
    coalesce(insurance.write_off, 0) as insurance_write_off,
    procedures.is_complete,
    procedures.is_deleted,
    greatest(procedures._loaded_at, insurance.last_loaded_at) as _loaded_at
from procedures
left join insurance
    on procedures.procedure_id = insurance.procedure_id
