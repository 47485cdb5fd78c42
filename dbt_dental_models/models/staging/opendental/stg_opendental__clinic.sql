with

source as (

    select * from {{ source('opendental', 'clinic') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        clinicnum as clinic_id,
        {{ clean_fk('defaultprov') }} as default_provider_id,

        ----------  text
        description as clinic_name,
        nullif(abbr, '') as clinic_abbr,
        nullif(city, '') as city,
        nullif(state, '') as state,

        ----------  booleans
        {{ to_bool('ishidden') }} as is_hidden,

        ----------  timestamps
        _loaded_at

    from source

)

select * from renamed
