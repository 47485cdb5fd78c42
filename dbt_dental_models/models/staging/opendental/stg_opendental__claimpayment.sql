with

source as (

    select * from {{ source('opendental', 'claimpayment') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        claimpaymentnum as claim_payment_id,
        {{ clean_fk('clinicnum') }} as clinic_id,
        {{ clean_fk('paytype') }} as payment_type_id,

        ----------  text
        nullif(carriername, '') as carrier_name,

        ----------  numerics
        {{ to_money('checkamt') }} as check_amount,

        ----------  booleans
        {{ to_bool('ispartial') }} as is_partial,

        ----------  dates
        {{ clean_date('checkdate') }} as check_date,
        {{ clean_date('dateissued') }} as issued_date,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
