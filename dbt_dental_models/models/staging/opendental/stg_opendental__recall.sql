with

source as (

    select * from {{ source('opendental', 'recall') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        recallnum as recall_id,
        patnum as patient_id,
        {{ clean_fk('recalltypenum') }} as recall_type_id,
        {{ clean_fk('recallstatus') }} as recall_status_id,

        ----------  numerics: the interval packs days | weeks<<8 | months<<16 | years<<24
        recallinterval & 255 as interval_days,
        (recallinterval >> 8) & 255 as interval_weeks,
        (recallinterval >> 16) & 255 as interval_months,
        (recallinterval >> 24) & 255 as interval_years,

        ----------  booleans
        {{ to_bool('isdisabled') }} as is_disabled,

        ----------  dates
        {{ clean_date('datedue') }} as due_date,
        {{ clean_date('dateduecalc') }} as calculated_due_date,
        {{ clean_date('dateprevious') }} as previous_date,
        {{ clean_date('datescheduled') }} as scheduled_date,
        {{ clean_date('disableuntildate') }} as disabled_until_date,

        ----------  timestamps
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
