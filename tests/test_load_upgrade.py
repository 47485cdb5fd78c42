"""A source upgraded under an incremental table: columns added (NOT NULL DEFAULT and nullable) and
renamed are filled for every row raw holds in the load that first sees them, rows stamped years
before the window included, and the saved cursor moves by tonight's window only."""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from datetime import datetime

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, source_rows, table_config

from etl_pipeline.db import connect_target
from etl_pipeline.load import failure, load_table, run, select_tables, source, verify_table
from etl_pipeline.schema.analyze import analyze_source, render_tables_yml
from etl_pipeline.synthetic import ddl, generate
from etl_pipeline.synthetic.upgrade import upgrade

OLD_ROWS = 200
# rows stamped years before any window: only a backfill reaches them
DDL = """CREATE TABLE {name} (
  id bigint(20) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  v int(11) NOT NULL DEFAULT 0,
  note varchar(100) DEFAULT '',
  ts datetime NOT NULL,
  KEY ts (ts)
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb3"""
TONIGHT = ("2023-03-01 12:00:01", "2023-03-01 12:00:05")


def make(settings, name):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        DDL.format(name=name),
        f"INSERT INTO {name} (v, note, ts) SELECT seq, CONCAT('n', seq), "
        f"'2019-01-01 08:00:00' + INTERVAL seq MINUTE FROM seq_1_to_{OLD_ROWS}",
    )
    table = table_config(settings, name, lookback=0)
    first = load_table(settings, table, "u0")
    assert (first.strategy, first.reason, first.inserted) == ("full", "first_load", OLD_ROWS)
    assert saved_cursor(settings, name) == "2019-01-01 11:20:00"
    return table


def saved_cursor(settings, name):
    return pg_rows(settings, "SELECT cursor_value FROM etl.load_state WHERE table_name = %s", (name,))[0][0]


def write_tonight(settings, name, columns, values):
    """Two rows in tonight's window (after the saved cursor, before the source clock)."""
    for stamp, value in zip(TONIGHT, values, strict=True):
        admin_exec(settings, f"INSERT INTO {name} (v, ts, {columns}) VALUES (-1, '{stamp}', {value})")


def source_table(settings, name, columns):
    return sorted(source_rows(settings, f"SELECT {columns} FROM {name}"))


def raw_table(settings, name, columns):
    return sorted(pg_rows(settings, f"SELECT {columns} FROM raw.{name} WHERE _deleted_at IS NULL"))


def test_added_columns_hold_the_source_values_on_every_row(settings):
    t = make(settings, "up_added")
    admin_exec(
        settings,
        "ALTER TABLE up_added ADD COLUMN C8 int(11) NOT NULL DEFAULT 8, ADD COLUMN Extra varchar(20) NULL",
        # values set on old rows without moving their cursor (a convert script does that)
        "UPDATE up_added SET C8 = 5 WHERE id IN (3, 4)",
        "UPDATE up_added SET Extra = 'set' WHERE id = 10",
        "DELETE FROM up_added WHERE id = 7",
    )
    write_tonight(settings, "up_added", "C8, Extra", ("3, NULL", "8, 'x'"))
    result = load_table(settings, t, "u1")
    assert (result.strategy, result.reason) == ("incremental", "columns_added")
    # the window: tonight's 2 rows and the row at the saved cursor (its lower end is closed); the
    # backfill reads the rows whose new values are not the defaults (8, NULL): ids 3, 4, 10 and
    # tonight's two, and updates the three old ones (the window's rows were merged with theirs)
    assert (result.inserted, result.updated, result.deleted, result.rows_read) == (2, 3, 1, 3 + 5)
    columns = "id, v, note, ts, c8, extra"
    assert raw_table(settings, "up_added", columns) == source_table(settings, "up_added", columns)
    by_id = dict(pg_rows(settings, "SELECT id, c8 FROM raw.up_added WHERE id IN (1, 3, 7, 200)"))
    assert by_id == {1: 8, 3: 5, 7: None, 200: 8}  # 7 was deleted before the column came
    assert saved_cursor(settings, "up_added") == TONIGHT[-1]
    assert verify_table(settings, t, deep=True).ok
    raw_types = dict(
        pg_rows(
            settings,
            "SELECT column_name, data_type || coalesce(' default ' || column_default, '') "
            "FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = 'up_added'",
        )
    )
    assert (raw_types["c8"], raw_types["extra"]) == ("integer", "text")  # no default left behind
    # the next night reads the window as usual (the row at the saved cursor, and the one written)
    admin_exec(settings, "UPDATE up_added SET C8 = 9, ts = '2023-03-02 00:00:00' WHERE id = 1")
    again = load_table(settings, t, "u2")
    assert (again.reason, again.rows_read, again.updated) == ("saved_cursor", 2, 1)
    assert raw_table(settings, "up_added", columns) == source_table(settings, "up_added", columns)


def test_a_renamed_column_is_filled_and_the_old_one_kept(settings, caplog):
    t = make(settings, "up_renamed")
    admin_exec(settings, "ALTER TABLE up_renamed CHANGE COLUMN note memo varchar(100) DEFAULT ''")
    write_tonight(settings, "up_renamed", "memo", ("'m1'", "''"))
    with caplog.at_level(logging.WARNING, logger="etl_pipeline.load"):
        result = load_table(settings, t, "r1")
    assert (result.strategy, result.reason) == ("incremental", "column_renamed")
    assert "column note renamed to memo (note kept)" in caplog.text
    assert "column note no longer exists at the source; kept in raw" in caplog.text
    columns = "id, v, ts, memo"
    assert raw_table(settings, "up_renamed", columns) == source_table(settings, "up_renamed", columns)
    kept = pg_rows(settings, "SELECT id, note FROM raw.up_renamed WHERE id IN (1, 200) OR v = -1 ORDER BY id")
    assert kept == [(1, "n1"), (200, "n200"), (201, None), (202, None)]  # no new values
    assert saved_cursor(settings, "up_renamed") == TONIGHT[-1]
    assert verify_table(settings, t, deep=True).ok


def test_a_column_dropped_and_another_added_elsewhere_is_drop_and_add(settings, caplog):
    t = make(settings, "up_dropadd")
    admin_exec(
        settings,
        "ALTER TABLE up_dropadd DROP COLUMN note",
        "ALTER TABLE up_dropadd ADD COLUMN memo varchar(100) DEFAULT 'm'",
        "UPDATE up_dropadd SET memo = CONCAT('m', id) WHERE id % 50 = 0",
    )
    with caplog.at_level(logging.WARNING, logger="etl_pipeline.load"):
        result = load_table(settings, t, "d1")
    # the row at the saved cursor is read again and merged with its value; the backfill reads the
    # four rows not holding the default and updates the three the merge did not
    assert (result.reason, result.rows_read, result.updated) == ("columns_added", 1 + 4, 1 + 3)
    assert "renamed" not in caplog.text
    columns = "id, v, ts, memo"
    assert raw_table(settings, "up_dropadd", columns) == source_table(settings, "up_dropadd", columns)
    assert pg_rows(settings, "SELECT count(*) FROM raw.up_dropadd WHERE note IS NOT NULL") == [(OLD_ROWS,)]
    assert saved_cursor(settings, "up_dropadd") == "2019-01-01 11:20:00"  # nothing new in the window


def test_added_columns_of_every_kind_round_trip_their_defaults(settings):
    """The default is the source's own rendering of it, for each kind of column the renderer knows."""
    t = make(settings, "up_kinds")
    admin_exec(
        settings,
        "ALTER TABLE up_kinds"
        " ADD COLUMN d date NOT NULL DEFAULT '0001-01-01',"
        " ADD COLUMN z datetime NOT NULL DEFAULT '0000-00-00 00:00:00',"
        " ADD COLUMN e enum('a','b c') NOT NULL DEFAULT 'b c',"
        " ADD COLUMN s set('x','y') NOT NULL DEFAULT 'x,y',"
        " ADD COLUMN b bit(1) NOT NULL DEFAULT b'1',"
        " ADD COLUMN m decimal(10,2) NOT NULL DEFAULT '-1.50',"
        " ADD COLUMN f double NOT NULL DEFAULT 0.1,"
        " ADD COLUMN q varchar(20) NOT NULL DEFAULT 'it''s \\\\ a\\ttab',"
        " ADD COLUMN c timestamp NOT NULL DEFAULT current_timestamp()",
        "UPDATE up_kinds SET e = 'a', m = 2 WHERE id = 5",
    )
    result = load_table(settings, t, "k1")
    assert result.reason == "columns_added"
    # every row differs from the default of `c` (an expression: taken as NULL); the row at the saved
    # cursor is also read by the window (and merged with its values, so the backfill leaves it)
    assert (result.rows_read, result.updated) == (1 + OLD_ROWS, OLD_ROWS)
    assert verify_table(settings, t, deep=True).ok
    assert pg_rows(settings, "SELECT d, z, e, s, b, m, f, q FROM raw.up_kinds WHERE id = 1") == [
        (datetime(1, 1, 1).date(), None, "b c", ["x", "y"], True, -1.5, 0.1, "it's \\ a\ttab")
    ]


# ---------------------------------------------------------------- failures say where and what to do

SECRET = "Jonathan Smithers 123-45-6789"  # stands for a patient's data


def make_failing(settings, name, note=SECRET):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        DDL.format(name=name),
        f"INSERT INTO {name} (v, note, ts) SELECT seq * 1000, '{note}', '2019-01-01 08:00:00' + INTERVAL seq MINUTE "
        "FROM seq_1_to_50",
    )
    return table_config(settings, name, lookback=0)


def wrong_mapping(monkeypatch, source_type, pg_type):
    """Force an error: a type mapping that does not fit the source's values."""
    real = source.map_column_type

    def mapped(column_type):
        found = real(column_type)
        return dataclasses.replace(found, pg_type=pg_type) if column_type == source_type else found

    monkeypatch.setattr(source, "map_column_type", mapped)


def failed_load(settings, table, run_id, caplog, **kwargs):
    """(exception, message) of a load that must fail; the message is the one logged and recorded."""
    with caplog.at_level(logging.ERROR, logger="etl_pipeline.load"), pytest.raises(Exception) as raised:
        load_table(settings, table, run_id, **kwargs)
    message = failure.message_of(raised.value)
    assert f"{table.name}: load failed ({type(raised.value).__name__}): {message}" in caplog.text
    assert message != type(raised.value).__name__ and SECRET not in message and SECRET not in caplog.text
    status = pg_rows(
        settings,
        "SELECT status, error_class FROM etl.load_runs WHERE run_id = %s AND table_name = %s",
        (run_id, table.name),
    )
    assert status == [("failed", type(raised.value).__name__)]
    return raised.value, message


def test_a_value_raw_cannot_hold_names_column_and_types_never_the_value(settings, monkeypatch, caplog):
    t = make_failing(settings, "up_badtext")
    wrong_mapping(monkeypatch, "varchar(100)", "integer")
    exc, message = failed_load(settings, t, "e1", caplog)
    assert SECRET in exc.diag.context  # the server's own report quotes the value: it is not passed on
    assert message == (
        "up_badtext: a value read from the source could not be stored in raw's type, column note "
        "(source type varchar(100), raw type integer), while copying the source's rows into "
        "raw.up_badtext__new (full refresh) (InvalidTextRepresentation, SQLSTATE 22P02). The value is "
        "not shown (it may be patient data). If the source column's type changed, re-run: the change "
        "is picked up; otherwise the type mapping does not fit the values the source holds: report the "
        "column and its types. Nothing of this table's load was committed."
    )
    assert pg_rows(settings, "SELECT to_regclass('raw.up_badtext')") == [(None,)]


def test_a_number_out_of_range_in_the_window_names_column_and_types(settings, monkeypatch, caplog):
    t = make_failing(settings, "up_range", note="n")
    load_table(settings, t, "r0")
    admin_exec(settings, "UPDATE up_range SET v = 40000, ts = '2023-03-01 12:00:00' WHERE id = 3")
    wrong_mapping(monkeypatch, "int(11)", "smallint")  # raw keeps integer: the stage is raw's copy...
    pg_rows(settings, "ALTER TABLE raw.up_range ALTER COLUMN v TYPE smallint USING 0")  # ...so narrow raw too
    _, message = failed_load(settings, t, "r1", caplog)
    assert message.startswith(
        "up_range: a value read from the source could not be stored in raw's type, column v "
        "(source type int(11), raw type smallint), while copying the read window into the stage table "
        "(NumericValueOutOfRange, SQLSTATE 22003)."
    )
    assert "40000" not in message


def test_a_lock_held_elsewhere_names_the_table_and_what_to_do(settings, monkeypatch, caplog):
    t = make_failing(settings, "up_locked", note="n")
    load_table(settings, t, "l0")
    admin_exec(settings, "UPDATE up_locked SET v = 1, ts = '2023-03-01 12:00:00' WHERE id = 3")
    holder = connect_target(settings.target)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE raw.up_locked IN ACCESS EXCLUSIVE MODE")
        # the loader's own lock_timeout (TARGET_LOCK_TIMEOUT): its connection options win over PGOPTIONS
        impatient = dataclasses.replace(
            settings, target=dataclasses.replace(settings.target, lock_timeout=0.2)
        )
        _, message = failed_load(impatient, t, "l1", caplog)
    finally:
        holder.rollback()
        holder.close()
    assert message.startswith(
        "up_locked: raw.up_locked (or a view over it) could not be locked within lock_timeout "
        "(LockNotAvailable, SQLSTATE 55P03). Another session holds it"
    )


def test_a_widening_postgres_refuses_names_the_column_and_both_types(settings, caplog):
    t = make_failing(settings, "up_policy", note="n")
    load_table(settings, t, "p0")
    pg_rows(settings, "CREATE POLICY up_policy_v ON raw.up_policy USING (v > 0)")
    admin_exec(settings, "ALTER TABLE up_policy MODIFY v bigint(20) NOT NULL DEFAULT 0")
    try:
        exc, message = failed_load(settings, t, "p1", caplog)
    finally:
        pg_rows(settings, "DROP POLICY up_policy_v ON raw.up_policy")
    assert type(exc).__name__ == "LoadStepFailed"
    assert message.startswith(
        "up_policy: PostgreSQL cannot make this change to raw.up_policy in place, column v "
        "(source type bigint(20), raw type bigint), while widening column v from integer to bigint "
        "(FeatureNotSupported, SQLSTATE 0A000)."
    )
    assert load_table(settings, t, "p2").status == "success"  # once the policy is gone


# ---------------------------------------------------------------- the simulated OpenDental upgrade

UPGRADE_VIEWS = """
CREATE SCHEMA IF NOT EXISTS stg_upgrade;
CREATE VIEW stg_upgrade.stg_appointment AS
with source as (select * from raw.appointment where _deleted_at is null),
renamed as (select aptnum as appointment_id, ishygiene = 1 as is_hygiene, provbartext from source)
select * from renamed;
CREATE VIEW stg_upgrade.stg_procedurelog AS
select procnum as procedure_id, baseunits as base_units, drugqty as drug_qty
  from raw.procedurelog where _deleted_at is null;
CREATE VIEW public.upgrade_hygiene AS
select count(*) filter (where is_hygiene) as hygiene from stg_upgrade.stg_appointment;
COMMENT ON VIEW public.upgrade_hygiene IS 'a user''s view on a staging view';
"""
# (table, added column, its default in raw) of the upgrade's NOT NULL DEFAULT columns
DEFAULTED = [
    ("patient", "preferredpronoun", 0),
    ("definition", "itemextra", ""),
    ("paysplit", "isinterestsplit", 0),
    ("clinic", "smsfromnumber", ""),
]


def upgrade_views(settings):
    return pg_rows(
        settings,
        "SELECT c.oid::regclass::text, pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'stg_upgrade' OR c.relname = 'upgrade_hygiene' ORDER BY 1",
    )


@pytest.mark.parametrize("seed", [3, 4])
def test_after_synth_upgrade_one_load_of_every_table_leaves_raw_equal_to_the_source(settings, seed):
    fresh_source(settings, seed)
    full = run(settings, max_workers=2, run_id=f"upg{seed}-full")
    assert [r.table for r in full if r.status != "success"] == []
    pg_rows(settings, UPGRADE_VIEWS)
    views = upgrade_views(settings)
    report = upgrade(settings.source_admin, seed=seed)
    assert report.steps == ["24.1", "24.2"]
    settings.tables_yml.write_text(render_tables_yml(analyze_source(settings)))  # the two new tables
    time.sleep(1.1)  # a load reads up to the second before the source clock
    after = run(settings, max_workers=2, run_id=f"upg{seed}-after")
    assert [(r.table, r.message) for r in after if r.status != "success"] == []
    reasons = {r.table: r.reason for r in after}
    assert (reasons["appointment"], reasons["procedurelog"], reasons["patient"]) == (
        "column_renamed",
        "columns_added",
        "columns_added",
    )
    assert (reasons["erxlog"], reasons["apptreminderrule"]) == ("first_load", "first_load")
    tables = select_tables(settings)
    bad = [p for p in (verify_table(settings, t, deep=True) for t in tables) if not p.ok]
    assert bad == []
    assert upgrade_views(settings) == views
    by_name = {t.name: t for t in tables}
    for table, column, default in DEFAULTED:
        cursor = by_name[table].cursor
        # rows stamped years before the newest (a table read in full has no cursor: none counted)
        old = (
            f"{cursor} < (SELECT max({cursor}) FROM raw.{table}) - interval '2 years'" if cursor else "false"
        )
        old_rows, not_default = pg_rows(
            settings,
            f"SELECT count(*) FILTER (WHERE {old}), count(*) FILTER (WHERE {column} IS DISTINCT FROM %s) "
            f"FROM raw.{table} WHERE _deleted_at IS NULL",
            (default,),
        )[0]
        assert not_default == 0 and (old_rows > 0 or not cursor), (table, column, old_rows)
    assert {by_name[t].strategy for t in ("patient", "paysplit")} == {"incremental"}
    assert pg_rows(settings, "SELECT count(*) FROM raw.procedurelog WHERE externalnote IS NOT NULL") == [(0,)]
    renamed = pg_rows(
        settings, "SELECT count(*) FROM raw.appointment WHERE providerbartext IS DISTINCT FROM provbartext"
    )
    assert renamed == [(0,)]  # the renamed column holds every row's value; the old one is kept


def fresh_source(settings, seed):
    leftovers = [name for (name,) in source_rows(settings, "SHOW TABLES") if name not in ddl.TABLE_NAMES]
    if leftovers:  # other tests' tables, and the tables an earlier upgrade added
        admin_exec(settings, "DROP TABLE " + ", ".join(f"`{name}`" for name in leftovers))
    generate(settings.source_admin, scale=0.01, seed=seed, out=io.StringIO())
    pg_rows(settings, "DROP SCHEMA IF EXISTS raw CASCADE; DROP SCHEMA IF EXISTS etl CASCADE")
    pg_rows(settings, "DROP SCHEMA IF EXISTS stg_upgrade CASCADE")
    settings.tables_yml.write_text(render_tables_yml(analyze_source(settings)))
