-- Patient balances from the transactions up to the as-of date (charges - credits).

with

transactions as (

    select * from {{ ref('int_transactions') }}
    where transaction_date <= {{ as_of_date() }}

),

families as (

    select * from {{ ref('int_patient_families') }}

),

balances as (

    select
        families.patient_id,
        families.guarantor_id,
        coalesce(sum(transactions.balance_effect) filter (where transactions.balance_effect > 0), 0)
            as total_charges,
        coalesce(-sum(transactions.balance_effect) filter (where transactions.balance_effect < 0), 0)
            as total_credits,
        coalesce(sum(transactions.balance_effect), 0) as balance
    from families
    left join transactions
        on families.patient_id = transactions.patient_id
    group by families.patient_id, families.guarantor_id

)

select * from balances
