-- Patient payments with the total of their splits (they must agree: see the model's tests).

with

payments as (

    select * from {{ ref('stg_opendental__payment') }}

),

splits as (

    select
        payment_id,
        count(*) as split_count,
        sum(split_amount) as split_total,
        max(updated_at) as splits_updated_at
    from {{ ref('stg_opendental__paysplit') }}
    group by payment_id

)

select
    payments.payment_id,
    payments.patient_id,
    payments.payment_type_id,
    payments.payment_date,
    payments.payment_amount,
    payments.is_income_transfer,
    coalesce(payments.clinic_id, 0) as clinic_id,
    coalesce(splits.split_count, 0) as split_count,
    coalesce(splits.split_total, 0) as split_total,
    greatest(payments.updated_at, splits.splits_updated_at) as updated_at
from payments
left join splits
    on payments.payment_id = splits.payment_id
