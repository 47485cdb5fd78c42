with

source as (

    select * from {{ source('opendental', 'payment') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        paynum as payment_id,
        patnum as patient_id,
        {{ clean_fk('paytype') }} as payment_type_id,
        {{ clean_fk('clinicnum') }} as clinic_id,

        ----------  numerics
        {{ to_money('payamt') }} as payment_amount,

        ----------  booleans: PayType 0 = income transfer between providers/patients
        paytype = 0 as is_income_transfer,
        {{ to_bool('issplit') }} as is_split,

        ----------  dates
        {{ clean_date('paydate') }} as payment_date,
        {{ clean_date('dateentry') }} as entry_date,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
