with

codes as (

    select * from {{ ref('stg_opendental__procedurecode') }}

),

categories as (

    select * from {{ ref('stg_opendental__definition') }}

)

select
    codes.procedure_code_id,
    codes.procedure_code,
    codes.description,
    codes.abbreviation,
    categories.item_name as procedure_category,
    codes.treatment_area,
    codes.is_hygiene,
    codes.is_prosthesis
from codes
left join categories
    on codes.procedure_category_id = categories.definition_id
