{#-
    on-run-start: fail at once, naming the source, when a raw table the selected nodes read is missing
    (instead of a "relation does not exist" deep inside the first model that touches it).
-#}
{% macro assert_sources_exist() %}
    {%- if execute -%}
        {%- set wanted = {} -%}
        {%- for unique_id in selected_resources -%}
            {%- set node = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
            {%- if node and node.resource_type == 'source' -%}
                {%- do wanted.update({node.source_name ~ '.' ~ node.name: (node.schema, node.identifier)}) -%}
            {%- elif node -%}
                {%- for source_id in node.depends_on.nodes if source_id.startswith('source.') -%}
                    {%- set source = graph.sources[source_id] -%}
                    {%- do wanted.update({source.source_name ~ '.' ~ source.name: (source.schema, source.identifier)}) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if wanted -%}
            {%- set existing = run_query(
                "select table_schema || '.' || table_name from information_schema.tables"
                ~ " where table_schema in ('" ~ (wanted.values() | map(attribute=0) | unique | join("', '")) ~ "')"
            ).columns[0].values() -%}
            {%- set missing = [] -%}
            {%- for name, location in wanted.items() | sort -%}
                {%- if (location[0] ~ '.' ~ location[1]) not in existing -%}
                    {%- do missing.append('source ' ~ name ~ ' (table ' ~ location[0] ~ '.' ~ location[1] ~ ')') -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if missing -%}
                {{ exceptions.raise_compiler_error(
                    "missing raw table: " ~ missing | join(', ')
                    ~ "; load it first with `python -m etl_pipeline.cli run`"
                ) }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
