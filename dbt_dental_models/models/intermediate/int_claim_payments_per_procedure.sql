-- Insurance money per procedure: what was billed, estimated, paid and written off across all of its
-- claimprocs that are attached to a claim (estimates without a claim are left out).

with

claimprocs as (

    select * from {{ ref('stg_opendental__claimproc') }}
    where procedure_id is not null and claim_id is not null

),

per_procedure as (

    select
        procedure_id,
        count(distinct claim_id) as claim_count,
        sum(fee_billed) as fee_billed,
        sum(insurance_estimate) as insurance_estimate,
        sum(insurance_paid) filter (where is_insurance_payment) as insurance_paid,
        sum(write_off) filter (where is_write_off) as write_off,
        max(_loaded_at) as last_loaded_at
    from claimprocs
    group by procedure_id

)

select
    procedure_id,
    claim_count,
    fee_billed,
    insurance_estimate,
    coalesce(insurance_paid, 0) as insurance_paid,
    coalesce(write_off, 0) as write_off,
    last_loaded_at
from per_procedure
