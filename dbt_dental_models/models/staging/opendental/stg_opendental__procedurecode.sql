with

source as (

    select * from {{ source('opendental', 'procedurecode') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        codenum as procedure_code_id,
        {{ clean_fk('proccat') }} as procedure_category_id,

        ----------  text
        proccode as procedure_code,
        descript as description,
        nullif(abbrdesc, '') as abbreviation,

        ----------  enums
        {{ decode('treatarea', {0: 'None', 1: 'Surface', 2: 'Tooth', 3: 'Mouth', 4: 'Quad',
                                 5: 'Sextant', 6: 'Arch', 7: 'ToothRange'}) }} as treatment_area,

        ----------  booleans
        {{ to_bool('ishygiene') }} as is_hygiene,
        {{ to_bool('isprosth') }} as is_prosthesis,
        {{ to_bool('nobillins') }} as is_not_billed_to_insurance,

        ----------  timestamps
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
