{#- The few generic tests the project needs (no Hub packages here). -#}

{#- Rows where the boolean expression is false fail. -#}
{% test expression_is_true(model, expression, where_clause=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
    {%- if where_clause %}
        and ({{ where_clause }})
    {%- endif %}
{% endtest %}

{#- Each combination of the columns appears once. -#}
{% test unique_combination(model, combination) %}
    select {{ combination | join(', ') }}, count(*) as n_rows
    from {{ model }}
    group by {{ combination | join(', ') }}
    having count(*) > 1
{% endtest %}

{#- Values lie within [min_value, max_value] (nulls pass). -#}
{% test within_range(model, column_name, min_value=none, max_value=none) %}
    select {{ column_name }}
    from {{ model }}
    where
        {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% else %} false{% endif %}
        {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
{% endtest %}

{#- The model has at least one row (an empty mart is a broken mart). -#}
{% test not_empty(model) %}
    select 1 as empty_model
    where not exists (select 1 from {{ model }})
{% endtest %}
