-- One row per day and provider with money collected; see the doc block kpi_collections.

with

transactions as (

    select * from {{ ref('int_transactions') }}
    where
        transaction_type = 'insurance_payment'
        or (transaction_type = 'patient_payment' and not is_income_transfer)

),

daily as (

    select
        transaction_date as collection_date,
        provider_id,
        sum(amount) filter (where transaction_type = 'patient_payment') as patient_collections,
        sum(amount) filter (where transaction_type = 'insurance_payment') as insurance_collections
    from transactions
    group by transaction_date, provider_id

)

select
    {{ surrogate_key(['collection_date', 'provider_id']) }} as collection_key,
    collection_date,
    provider_id,
    coalesce(patient_collections, 0) as patient_collections,
    coalesce(insurance_collections, 0) as insurance_collections,
    coalesce(patient_collections, 0) + coalesce(insurance_collections, 0) as total_collections
from daily
