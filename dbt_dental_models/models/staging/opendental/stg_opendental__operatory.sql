with

source as (

    select * from {{ source('opendental', 'operatory') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        operatorynum as operatory_id,
        {{ clean_fk('provdentist') }} as dentist_id,
        {{ clean_fk('provhygienist') }} as hygienist_id,
        {{ clean_fk('clinicnum') }} as clinic_id,

        ----------  text
        opname as operatory_name,
        nullif(abbrev, '') as operatory_abbr,

        ----------  numerics
        itemorder as display_order,

        ----------  booleans
        {{ to_bool('ishidden') }} as is_hidden,
        {{ to_bool('ishygiene') }} as is_hygiene,

        ----------  timestamps
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
