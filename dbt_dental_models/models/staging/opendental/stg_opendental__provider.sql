with

source as (

    select * from {{ source('opendental', 'provider') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        provnum as provider_id,
        {{ clean_fk('feesched') }} as fee_schedule_id,
        {{ clean_fk('specialty') }} as specialty_id,

        ----------  text (provider SSN is never copied into raw)
        nullif(abbr, '') as provider_abbr,
        fname as first_name,
        lname as last_name,
        trim(concat_ws(' ', nullif(fname, ''), nullif(lname, ''))) as provider_name,

        ----------  numerics
        itemorder as display_order,
        {{ to_money('hourlyprodgoalamt') }} as hourly_production_goal,

        ----------  booleans
        {{ to_bool('issecondary') }} as is_secondary,
        {{ to_bool('ishidden') }} as is_hidden,
        {{ to_bool('isnotperson') }} as is_not_person,
        coalesce(provstatus = 1, false) as is_deleted,

        ----------  dates
        {{ clean_date('dateterm') }} as termination_date,

        ----------  timestamps
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
