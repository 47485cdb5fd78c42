with

source as (

    select * from {{ source('opendental', 'carrier') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        carriernum as carrier_id,

        ----------  text
        carriername as carrier_name,
        nullif(electid, '') as electronic_payer_id,
        nullif(city, '') as city,
        nullif(state, '') as state,

        ----------  booleans
        {{ to_bool('ishidden') }} as is_hidden,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
