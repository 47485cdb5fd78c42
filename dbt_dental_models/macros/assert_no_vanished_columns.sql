{#-
    pre-hook of the staging models: fail the model, naming it and the column, when it reads a raw column
    that no longer exists at the source (renamed or dropped by an OpenDental upgrade). The loader keeps
    such a column in raw with its old values and marks it with a comment beginning 'vanished at the
    source'; without this check the model would go on building with NULLs in every new row.
-#}
{% macro assert_no_vanished_columns() %}
    {%- if execute -%}
        {%- for source_id in model.depends_on.nodes if source_id.startswith('source.') -%}
            {%- set source = graph.sources[source_id] -%}
            {%- set vanished = run_query(
                "select a.attname from pg_attribute a"
                ~ " join pg_description d on d.objoid = a.attrelid and d.objsubid = a.attnum"
                ~ " where a.attrelid = to_regclass('" ~ source.schema ~ "." ~ source.identifier ~ "')"
                ~ " and d.description like 'vanished at the source%' order by a.attnum"
            ).columns[0].values() -%}
            {%- for column in vanished -%}
                {%- if modules.re.search('\\b' ~ column ~ '\\b', model.raw_code, modules.re.IGNORECASE) -%}
                    {{ exceptions.raise_compiler_error(
                        "model " ~ model.name ~ " reads column " ~ column ~ " of " ~ source.schema ~ "."
                        ~ source.identifier ~ ", which no longer exists at the source (renamed or dropped"
                        ~ " by an OpenDental upgrade): change the model to the new column, then rerun it"
                    ) }}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
