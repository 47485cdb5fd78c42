{#- Cleaning helpers for OpenDental's conventions: zero keys, MinValue dates, -1 overrides, tinyint flags, double money. -#}

{#- '0001-01-01' (C# DateTime.MinValue) and the legacy '1900-01-01' mean "no date". -#}
{% macro clean_date(column) -%}
    case when {{ column }} <= '1900-01-01' then null else {{ column }} end
{%- endmacro %}

{#- Foreign keys are NOT NULL with 0 meaning "none". -#}
{% macro clean_fk(column) -%}
    nullif({{ column }}, 0)
{%- endmacro %}

{#- -1 means "blank override" in claimproc/patplan override columns. -#}
{% macro clean_override(column) -%}
    nullif({{ column }}, -1)
{%- endmacro %}

{#- tinyint flags stay smallint in raw; staging turns them into booleans. -#}
{% macro to_bool(column) -%}
    ({{ column }} <> 0)
{%- endmacro %}

{#- Money is a double in OpenDental: cents, exactly, from staging on. -#}
{% macro to_money(column) -%}
    round(cast({{ column }} as numeric), 2)::numeric(14, 2)
{%- endmacro %}

{#- Decode an enum from a {value: label} mapping. -#}
{% macro decode(column, mapping) -%}
    case {{ column }}
        {%- for value, label in mapping.items() %}
        when {{ value }} then '{{ label }}'
        {%- endfor %}
        else 'Unknown'
    end
{%- endmacro %}

{#- The as-of date of aging KPIs: var('as_of_date') or the latest data date. -#}
{% macro as_of_date() -%}
    {%- if var('as_of_date') -%}
        cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
        (select as_of_date from {{ ref('int_as_of_date') }})
    {%- endif -%}
{%- endmacro %}

{#- A surrogate key from columns (nulls kept distinct from any value). -#}
{% macro surrogate_key(columns) -%}
    md5(concat_ws('|'{% for column in columns %}, coalesce(cast({{ column }} as text), '<null>'){% endfor %}))
{%- endmacro %}
