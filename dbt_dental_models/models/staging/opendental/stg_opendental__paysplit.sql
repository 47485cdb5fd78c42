with

source as (

    select * from {{ source('opendental', 'paysplit') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        splitnum as paysplit_id,
        paynum as payment_id,
        patnum as patient_id,
        {{ clean_fk('provnum') }} as provider_id,
        {{ clean_fk('procnum') }} as procedure_id,
        {{ clean_fk('adjnum') }} as adjustment_id,
        {{ clean_fk('payplannum') }} as payment_plan_id,
        {{ clean_fk('clinicnum') }} as clinic_id,
        {{ clean_fk('unearnedtype') }} as unearned_type_id,

        ----------  numerics
        {{ to_money('splitamt') }} as split_amount,

        ----------  booleans
        unearnedtype <> 0 as is_prepayment,

        ----------  dates
        {{ clean_date('datepay') }} as payment_date,
        {{ clean_date('dateentry') }} as entry_date,

        ----------  timestamps
        secdatetedit as updated_at,
        _loaded_at

    from source

)

select * from renamed
