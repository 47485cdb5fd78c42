-- Accounts receivable per guarantor (family) as of the as-of date; definition in kpi_ar_aging.
-- Credits (payments, write-offs, negative adjustments) pay off the oldest charges first; what is
-- left of each charge is aged by its date. A family in credit shows the credit in 0-30.

with

as_of as (

    select {{ as_of_date() }} as as_of_date

),

families as (

    select * from {{ ref('int_patient_families') }}

),

ledger as (

    select
        families.guarantor_id,
        money_movements.transaction_id,
        money_movements.transaction_date,
        money_movements.balance_effect
    from {{ ref('int_transactions') }} as money_movements
    inner join families
        on money_movements.patient_id = families.patient_id
    cross join as_of
    where
        money_movements.transaction_date <= as_of.as_of_date
        and money_movements.balance_effect <> 0

),

credits as (

    select
        guarantor_id,
        -sum(balance_effect) filter (where balance_effect < 0) as total_credits,
        sum(balance_effect) filter (where balance_effect > 0) as total_charges
    from ledger
    group by guarantor_id

),

charges_oldest_first as (

    select
        ledger.guarantor_id,
        ledger.transaction_date,
        ledger.balance_effect as charge_amount,
        sum(ledger.balance_effect) over (
            partition by ledger.guarantor_id
            order by ledger.transaction_date, ledger.transaction_id
            rows between unbounded preceding and current row
        ) as running_charges,
        coalesce(credits.total_credits, 0) as total_credits
    from ledger
    inner join credits
        on ledger.guarantor_id = credits.guarantor_id
    where ledger.balance_effect > 0

),

open_charges as (

    select
        charges_oldest_first.guarantor_id,
        as_of.as_of_date - charges_oldest_first.transaction_date as age_days,
        greatest(
            0,
            least(
                charges_oldest_first.charge_amount,
                charges_oldest_first.running_charges - charges_oldest_first.total_credits
            )
        ) as open_amount
    from charges_oldest_first
    cross join as_of

),

buckets as (

    select
        guarantor_id,
        sum(open_amount) filter (where age_days <= 30) as open_0_30,
        sum(open_amount) filter (where age_days between 31 and 60) as open_31_60,
        sum(open_amount) filter (where age_days between 61 and 90) as open_61_90,
        sum(open_amount) filter (where age_days > 90) as open_over_90
    from open_charges
    group by guarantor_id

),

aged as (

    select
        credits.guarantor_id,
        coalesce(credits.total_charges, 0) - coalesce(credits.total_credits, 0) as balance,
        -- a net credit has nothing to age: it is shown as a negative amount in the newest bucket
        coalesce(buckets.open_0_30, 0)
        + least(0, coalesce(credits.total_charges, 0) - coalesce(credits.total_credits, 0)) as balance_0_30,
        coalesce(buckets.open_31_60, 0) as balance_31_60,
        coalesce(buckets.open_61_90, 0) as balance_61_90,
        coalesce(buckets.open_over_90, 0) as balance_over_90
    from credits
    left join buckets
        on credits.guarantor_id = buckets.guarantor_id

)

select
    aged.guarantor_id,
    as_of.as_of_date,
    aged.balance,
    aged.balance_0_30,
    aged.balance_31_60,
    aged.balance_61_90,
    aged.balance_over_90
from aged
cross join as_of
