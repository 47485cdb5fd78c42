with

adjustments as (

    select * from {{ ref('stg_opendental__adjustment') }}

),

adjustment_types as (

    select * from {{ ref('stg_opendental__definition') }}

)

select
    adjustments.adjustment_id,
    adjustments.patient_id,
    adjustments.provider_id,
    adjustments.procedure_id,
    adjustments.adjustment_date,
    adjustment_types.item_name as adjustment_type,
    adjustments.adjustment_amount,
    coalesce(adjustments.clinic_id, 0) as clinic_id
from adjustments
left join adjustment_types
    on adjustments.adjustment_type_id = adjustment_types.definition_id
