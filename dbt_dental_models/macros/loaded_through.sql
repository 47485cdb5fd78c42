{#- The source time up to which every one of `tables` holds settled rows: the earliest start of their
    last successful loads' read windows (a table's saved cursor less its lookback), or where that load
    read the whole table, the newest value it read (its saved cursor). The clinic writes while the night
    loads table after table and InnoDB commits arrive late, so a row stamped later may be in one raw
    table and not yet in the other; a test that compares tables looks only at rows stamped up to here
    and sees the rest on a later night. For tables with a date/time cursor; with nothing recorded,
    nothing is held back. -#}
{% macro loaded_through(tables) %}
    coalesce((
        select min(coalesce(latest.window_lower, latest.window_upper, state.cursor_value)::timestamp)
        from (
            select distinct on (lower(table_name)) table_name, window_lower, window_upper
            from etl.load_runs
            where status = 'success'
                and lower(table_name) in ({% for t in tables %}'{{ t | lower }}'{{ ", " if not loop.last }}{% endfor %})
            order by lower(table_name), finished_at desc
        ) as latest
        left join etl.load_state as state on state.table_name = latest.table_name
    ), 'infinity'::timestamp)
{% endmacro %}
