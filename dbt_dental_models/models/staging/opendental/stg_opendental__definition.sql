with

source as (

    select * from {{ source('opendental', 'definition') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        defnum as definition_id,

        ----------  enums
        category as category_code,
        {{ decode('category', {1: 'AdjTypes', 2: 'ApptConfirmed', 4: 'BillingTypes', 10: 'PaymentTypes',
                                11: 'ProcCodeCats', 13: 'RecallUnschedStatus', 16: 'Diagnosis',
                                20: 'TxPriorities', 25: 'BlockoutTypes', 27: 'CommLogTypes',
                                29: 'PaySplitUnearnedType', 32: 'InsurancePaymentType',
                                35: 'ProviderSpecialties'}) }} as category,

        ----------  text
        itemname as item_name,
        nullif(itemvalue, '') as item_value,

        ----------  numerics
        itemorder as display_order,

        ----------  booleans
        {{ to_bool('ishidden') }} as is_hidden,

        ----------  timestamps
        _loaded_at

    from source

)

select * from renamed
