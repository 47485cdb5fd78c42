{#- Source freshness from the loader's own record: when the table's last load succeeded.
    A table loaded tonight with nothing new is fresh (its unchanged rows keep their _loaded_at);
    a table whose loads failed since keeps its older success and goes stale; one never loaded has
    no row, which dbt reads as infinitely old. -#}
{% macro loaded_at_from_load_state(relation) %}
    select max(last_success_at)
    from etl.load_state
    where target_name = '{{ relation.identifier | lower }}'
{% endmacro %}
