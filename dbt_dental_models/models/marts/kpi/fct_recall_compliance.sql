-- Hygiene recall compliance per recall type as of the as-of date; definition in kpi_recall.

with

as_of as (

    select {{ as_of_date() }} as as_of_date

),

recalls as (

    select recalls.*
    from {{ ref('stg_opendental__recall') }} as recalls
    inner join {{ ref('stg_opendental__recalltype') }} as recall_types
        on recalls.recall_type_id = recall_types.recall_type_id
    inner join {{ ref('stg_opendental__patient') }} as patients
        on recalls.patient_id = patients.patient_id
    where
        recall_types.is_hygiene
        and patients.patient_status = 'Patient'
        and not recalls.is_disabled
        and recalls.due_date is not null

),

classified as (

    select
        recalls.recall_type_id,
        case
            when recalls.scheduled_date is not null then 'scheduled'
            when recalls.due_date >= as_of.as_of_date then 'current'
            else 'overdue'
        end as recall_state
    from recalls
    cross join as_of

),

per_type as (

    select
        recall_type_id,
        count(*) as recalls_due,
        count(*) filter (where recall_state = 'current') as recalls_current,
        count(*) filter (where recall_state = 'scheduled') as recalls_scheduled,
        count(*) filter (where recall_state = 'overdue') as recalls_overdue
    from classified
    group by recall_type_id

)

select
    per_type.recall_type_id,
    recall_types.recall_type,
    as_of.as_of_date,
    per_type.recalls_due,
    per_type.recalls_current,
    per_type.recalls_scheduled,
    per_type.recalls_overdue,
    round(
        (per_type.recalls_current + per_type.recalls_scheduled)::numeric / nullif(per_type.recalls_due, 0), 4
    ) as compliance_rate
from per_type
inner join {{ ref('stg_opendental__recalltype') }} as recall_types
    on per_type.recall_type_id = recall_types.recall_type_id
cross join as_of
