with

source as (

    select * from {{ source('opendental', 'insplan') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        plannum as insurance_plan_id,
        {{ clean_fk('carriernum') }} as carrier_id,
        {{ clean_fk('employernum') }} as employer_id,
        {{ clean_fk('feesched') }} as fee_schedule_id,

        ----------  text
        nullif(groupname, '') as group_name,
        nullif(groupnum, '') as group_number,
        case plantype
            when '' then 'Percentage'
            when 'p' then 'PPO'
            when 'f' then 'FlatCopay'
            when 'c' then 'Capitation'
            else 'Unknown'
        end as plan_type,

        ----------  booleans
        {{ to_bool('ishidden') }} as is_hidden,
        {{ to_bool('ismedical') }} as is_medical,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
