with

source as (

    select * from {{ source('opendental', 'recalltype') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        recalltypenum as recall_type_id,

        ----------  text
        description as recall_type,
        nullif(procedures, '') as procedure_codes,

        ----------  booleans: the hygiene recall types (prophy, perio, child prophy)
        description ilike any(array['%prophy%', '%perio%', '%hyg%']) as is_hygiene,

        ----------  timestamps
        _loaded_at

    from source

)

select * from renamed
