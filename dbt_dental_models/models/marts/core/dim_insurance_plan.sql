with

plans as (

    select * from {{ ref('stg_opendental__insplan') }}

),

carriers as (

    select * from {{ ref('stg_opendental__carrier') }}

)

select
    plans.insurance_plan_id,
    plans.carrier_id,
    carriers.carrier_name,
    carriers.electronic_payer_id,
    plans.group_name,
    plans.group_number,
    plans.plan_type,
    plans.is_hidden
from plans
left join carriers
    on plans.carrier_id = carriers.carrier_id
