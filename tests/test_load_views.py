"""Type changes at the source while views depend on the raw table: a dbt-like staging view, a user's
view on top of it (view on view) and a materialized view, with grants and comments. Widened in
place (incremental) or swapped (full refresh), the views come back as they were and show the
widened values; a view the loader cannot recreate stops the load before anything changes."""

from __future__ import annotations

import psycopg2
import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.load import load_table, verify_table
from etl_pipeline.settings import read_env_file

DDL = """CREATE TABLE {name} (
  id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  flag tinyint(4) NOT NULL DEFAULT 0,
  code varchar(10) NOT NULL DEFAULT '',
  n int(11) NOT NULL DEFAULT 0,
  f float NOT NULL DEFAULT 0,
  ts datetime NOT NULL
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3"""
WIDEN = (
    "ALTER TABLE {name} MODIFY flag int(11) NOT NULL DEFAULT 0, MODIFY code varchar(50) NOT NULL DEFAULT '', "
    "MODIFY n bigint(20) NOT NULL DEFAULT 0, MODIFY f double NOT NULL DEFAULT 0"
)
WIDE_ROW = (
    "UPDATE {name} SET flag = 100000, n = 9000000000, code = REPEAT('c', 40), f = 1e300, "
    "ts = '2023-03-01 12:00:00' WHERE id = 5"
)
VIEWS = """
CREATE SCHEMA IF NOT EXISTS stg_test;
CREATE VIEW stg_test.stg_{name} AS
with source as (
    select * from raw.{name} where _deleted_at is null
),
renamed as (
    select id as x_id, flag = 1 as is_flag, flag as flag_code, code, n as amount, f as ratio
    from source
)
select * from renamed;
COMMENT ON VIEW stg_test.stg_{name} IS 'staging of {name}';
COMMENT ON COLUMN stg_test.stg_{name}.code IS 'the code, as the source has it';
CREATE VIEW public.{name}_report WITH (security_barrier = true) AS
    SELECT x_id, flag_code, amount, code FROM stg_test.stg_{name} WHERE amount > 10;
COMMENT ON VIEW public.{name}_report IS 'for the front desk';
CREATE MATERIALIZED VIEW public.{name}_counts AS
    SELECT flag_code, count(*) AS rows FROM stg_test.stg_{name} GROUP BY flag_code;
CREATE UNIQUE INDEX {name}_counts_flag ON public.{name}_counts (flag_code);
GRANT USAGE ON SCHEMA stg_test TO vw_reader;
GRANT SELECT ON stg_test.stg_{name}, public.{name}_report, public.{name}_counts TO vw_reader;
GRANT SELECT (x_id) ON public.{name}_report TO vw_auditor;
"""


@pytest.fixture(scope="module")
def superuser(local_stack, settings):
    """Runs statements as the target's superuser (roles are the cluster's, made once)."""
    password = read_env_file(local_stack.paths.secrets_file)["POSTGRES_SUPERUSER_PASSWORD"]

    def run(*statements):
        conn = psycopg2.connect(
            host=settings.target.host,
            port=settings.target.port,
            dbname=settings.target.database,
            user="postgres",
            password=password,
        )
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
        conn.commit()
        conn.close()

    for role in ("vw_reader", "vw_auditor", "vw_outsider"):
        run(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role}; END IF; END $$"
        )
    return run


def make(settings, superuser, name):
    drop_everywhere(settings, name)  # its views go with raw's table (CASCADE)
    admin_exec(
        settings,
        DDL.format(name=name),
        f"INSERT INTO {name} (flag, code, n, f, ts) SELECT seq % 3, CONCAT('c', seq), seq, seq / 4, "
        f"'2019-01-01 08:00:00' + INTERVAL seq MINUTE FROM seq_1_to_100",
    )
    table = table_config(settings, name, lookback=0)
    load_table(settings, table, "v0")
    pg_rows(settings, VIEWS.format(name=name))
    return table


VIEW_FACTS = """
SELECT n.nspname || '.' || c.relname, c.relkind, pg_get_userbyid(c.relowner), pg_get_viewdef(c.oid),
       c.reloptions, obj_description(c.oid, 'pg_class'),
       (SELECT array_agg(x.grantee::regrole::text || ':' || x.privilege_type ORDER BY 1)
          FROM aclexplode(c.relacl) x),
       (SELECT array_agg(a.attname || '=' || col_description(c.oid, a.attnum) ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = c.oid AND col_description(c.oid, a.attnum) IS NOT NULL),
       (SELECT array_agg(a.attname || ':' || x.grantee::regrole::text ORDER BY 1)
          FROM pg_attribute a, aclexplode(a.attacl) x WHERE a.attrelid = c.oid),
       (SELECT array_agg(pg_get_indexdef(i.indexrelid)) FROM pg_index i WHERE i.indrelid = c.oid),
       c.relispopulated
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname IN (%s, %s, %s) AND n.nspname IN ('stg_test', 'public')
 ORDER BY 1
"""


def view_facts(settings, name):
    return pg_rows(settings, VIEW_FACTS, (f"stg_{name}", f"{name}_report", f"{name}_counts"))


def view_rows(settings, name):
    return (
        pg_rows(
            settings,
            f"SELECT x_id, is_flag, flag_code, code, amount, ratio FROM stg_test.stg_{name} ORDER BY 1",
        ),
        pg_rows(settings, f"SELECT * FROM public.{name}_report ORDER BY 1"),
        pg_rows(settings, f"SELECT * FROM public.{name}_counts ORDER BY 1"),
    )


@pytest.mark.parametrize("full_refresh", [False, True], ids=["widened-in-place", "full-refresh"])
def test_type_changes_under_views_keep_the_views_as_they_were(settings, superuser, full_refresh):
    name = "vw_full" if full_refresh else "vw_inc"
    t = make(settings, superuser, name)
    facts = view_facts(settings, name)
    assert [f[1] for f in facts] == ["m", "v", "v"] and facts[1][4] == ["security_barrier=true"]
    staged, report, counts = view_rows(settings, name)
    admin_exec(settings, WIDEN.format(name=name), WIDE_ROW.format(name=name))
    result = load_table(settings, t, "v1", full_refresh=full_refresh)
    assert result.status == "success" and result.reason == ("forced" if full_refresh else "saved_cursor")
    types = dict(
        pg_rows(
            settings,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = %s AND column_name IN ('flag', 'code', 'n', 'f')",
            (name,),
        )
    )
    assert types == {"flag": "integer", "code": "text", "n": "bigint", "f": "double precision"}
    assert view_facts(settings, name) == facts  # definitions, owner, options, grants, comments, indexes
    wide = (5, False, 100000, "c" * 40, 9000000000, 1e300)
    assert view_rows(settings, name) == (
        [wide if r[0] == 5 else r for r in staged],
        sorted([*report, (5, 100000, 9000000000, "c" * 40)]),
        # a materialized view is made again with the rows of its query then: a swap makes it after the
        # rows are in, a type widened in place before the window's rows are merged (as it was)
        sorted([(k, n - (k == 2)) for k, n in counts] + [(100000, 1)]) if full_refresh else counts,
    )
    assert pg_rows(
        settings, f"SELECT has_table_privilege('vw_reader', 'public.{name}_report', 'SELECT')"
    ) == [(True,)]
    assert verify_table(settings, t, deep=True).ok


def test_a_view_of_a_role_the_loader_cannot_act_as_stops_the_load_before_it_changes_anything(
    settings, superuser
):
    name = "vw_own"
    t = make(settings, superuser, name)
    superuser(
        "GRANT USAGE ON SCHEMA raw TO vw_outsider",
        f"GRANT SELECT ON raw.{name} TO vw_outsider",
        f"CREATE VIEW public.{name}_outsider AS SELECT id, flag FROM raw.{name}",
        f"ALTER VIEW public.{name}_outsider OWNER TO vw_outsider",
    )
    before = pg_rows(settings, f"SELECT * FROM raw.{name} ORDER BY id")
    cursor = pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = %s", (name,))
    admin_exec(settings, WIDEN.format(name=name), WIDE_ROW.format(name=name))
    for run_id, full_refresh in (("o1", False), ("o2", True)):
        with pytest.raises(Exception) as failed:
            load_table(settings, t, run_id, full_refresh=full_refresh)
        message = str(failed.value)
        assert type(failed.value).__name__ == "ViewsInTheWay"
        assert message.startswith(
            f"raw.{name}: view public.{name}_outsider (owned by role vw_outsider) depends on it"
        )
        assert 'GRANT "vw_outsider" TO "etl"' in message and "nothing was changed" in message
        assert pg_rows(settings, f"SELECT * FROM raw.{name} ORDER BY id") == before
        assert pg_rows(settings, "SELECT to_regclass(%s)", (f"raw.{name}__new",)) == [(None,)]
    assert (
        pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = %s", (name,)) == cursor
    )
    assert pg_rows(
        settings,
        "SELECT run_id, status, error_class, rows_read FROM etl.load_runs WHERE table_name = %s "
        "AND run_id LIKE 'o%%' ORDER BY run_id",
        (name,),
    ) == [("o1", "failed", "ViewsInTheWay", 0), ("o2", "failed", "ViewsInTheWay", 0)]
    # what the message says to do; then the owner also needs to be able to create the view again
    superuser("GRANT vw_outsider TO etl")
    with pytest.raises(Exception, match="role vw_outsider lacks CREATE on schema public"):
        load_table(settings, t, "o3")
    superuser("GRANT CREATE ON SCHEMA public TO vw_outsider")
    try:
        assert load_table(settings, t, "o4").status == "success"
        assert pg_rows(
            settings,
            f"SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.{name}_outsider'::regclass",
        ) == [("vw_outsider",)]
        assert pg_rows(settings, f"SELECT flag FROM public.{name}_outsider WHERE id = 5") == [(100000,)]
    finally:
        superuser(
            f"DROP VIEW public.{name}_outsider",
            "REVOKE vw_outsider FROM etl",
            "REVOKE CREATE ON SCHEMA public FROM vw_outsider",
        )


def test_an_object_that_is_not_a_view_in_the_way_is_named(settings, superuser):
    name = "vw_fn"
    t = make(settings, superuser, name)
    pg_rows(
        settings,
        f"CREATE FUNCTION public.{name}_one(r stg_test.stg_{name}) RETURNS int LANGUAGE sql AS 'select 1'",
    )
    admin_exec(settings, WIDEN.format(name=name))
    try:
        with pytest.raises(Exception) as failed:
            load_table(settings, t, "f1")
        message = str(failed.value)
        assert message.startswith(
            f"raw.{name}: view stg_test.stg_{name} (owned by role etl), which depends on it, could not be set aside"
        )
        assert (
            "(DependentObjectsStillExist, SQLSTATE 2BP01)" in message
            and "a function taking its row type" in message
        )
        assert pg_rows(
            settings,
            f"SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = '{name}' AND column_name = 'flag'",
        ) == [("smallint",)]
    finally:
        pg_rows(settings, f"DROP FUNCTION public.{name}_one")
