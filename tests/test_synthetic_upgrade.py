"""The simulated OpenDental upgrade: information_schema shows exactly the changes the report lists, the
data survives them, a second upgrade to the same version is refused, and the same seed gives the same
database whether the steps run together or one at a time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from etl_pipeline.db import connect_source
from etl_pipeline.errors import ConfigError
from etl_pipeline.settings import PROJECT_ROOT
from etl_pipeline.synthetic import generate, mutate
from etl_pipeline.synthetic import upgrade as upgrade_module
from etl_pipeline.synthetic.build import admin_settings
from etl_pipeline.synthetic.ddl import TABLE_NAMES
from etl_pipeline.synthetic.integrity import broken_money_rules, dangling_foreign_keys
from etl_pipeline.synthetic.live import run_live
from etl_pipeline.synthetic.upgrade import UpgradeRefused, source_version, upgrade

SCALE = 0.01
SEED = 21
DB = "opendental_upgrade"
STAGING = PROJECT_ROOT / "dbt_dental_models" / "models" / "staging" / "opendental"

# (version, kind, table, column after, old type, new type, name before)
EXPECTED = [
    ("24.1", "added", "patient", "PreferredPronoun", None, "tinyint(4)", None),
    ("24.1", "widened", "patient", "Title", "varchar(15)", "varchar(50)", None),
    ("24.1", "dropped", "patient", "TrophyFolder", "varchar(255)", None, None),
    ("24.1", "added", "procedurelog", "ExternalNote", None, "varchar(255)", None),
    ("24.1", "widened", "procedurelog", "BaseUnits", "int(11)", "bigint(20)", None),
    ("24.1", "widened", "procedurelog", "DrugQty", "float", "double", None),
    ("24.1", "widened", "appointment", "IsHygiene", "tinyint(3) unsigned", "int(11)", None),
    ("24.1", "added", "definition", "ItemExtra", None, "varchar(255)", None),
    ("24.1", "added", "provider", "NpiTaxonomy", None, "varchar(50)", None),
    ("24.1", "table_added", "erxlog", None, None, None, None),
    ("24.1", "table_added", "apptreminderrule", None, None, None, None),
    ("24.2", "added", "paysplit", "IsInterestSplit", None, "tinyint(4)", None),
    ("24.2", "renamed", "appointment", "ProviderBarText", "varchar(60)", "varchar(60)", "ProvBarText"),
    ("24.2", "widened", "provider", "StateLicense", "varchar(15)", "varchar(50)", None),
    ("24.2", "added", "clinic", "SmsFromNumber", None, "varchar(30)", None),
    (
        "24.2",
        "enum_extended",
        "apptreminderrule",
        "TypeCur",
        "enum('Reminder','ConfirmationFutureDay','ScheduleThankYou')",
        "enum('Reminder','ConfirmationFutureDay','ScheduleThankYou','Arrival','PatientPortalInvite')",
        None,
    ),
]
NEW_TABLES = {
    "erxlog": ("ErxLogNum", "DateTStamp", 6),
    "apptreminderrule": ("ApptReminderRuleNum", "SecDateTEdit", 4),
}
# columns whose values must come through a widening or a rename unchanged: (table, before, after)
KEPT_VALUES = [
    ("patient", "Title", "Title"),
    ("procedurelog", "BaseUnits", "BaseUnits"),
    ("procedurelog", "DrugQty", "DrugQty"),
    ("appointment", "IsHygiene", "IsHygiene"),
    ("provider", "StateLicense", "StateLicense"),
    ("appointment", "ProvBarText", "ProviderBarText"),
]


@pytest.fixture(scope="module")
def admin(settings):
    return admin_settings(settings)


@pytest.fixture()
def cur(admin):
    conn = connect_source(admin)
    conn.autocommit(True)  # no open transaction holding metadata locks while a rebuild renames tables
    cursor = conn.cursor()
    yield cursor
    conn.close()


def columns(cur, database):
    """{table: [(name, position, type, nullable, default, extra)]} as information_schema shows them."""
    cur.execute(
        "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
        (database,),
    )
    found = {}
    for table, *column in cur.fetchall():
        found.setdefault(table, []).append(tuple(column))
    return found


def value_digest(cur, database, table, column):
    cur.execute(f"SELECT COUNT(`{column}`), BIT_XOR(CRC32(`{column}`)) FROM `{database}`.`{table}`")
    return cur.fetchone()


def checksums(cur, database, tables):
    cur.execute("CHECKSUM TABLE " + ", ".join(f"`{database}`.`{t}`" for t in tables))
    return {row[0].split(".", 1)[1]: row[1] for row in cur.fetchall()}


def shown_default(nullable, default):
    """COLUMN_DEFAULT as MariaDB shows it for a column written with that nullability and DEFAULT."""
    if default is None:
        return "NULL" if nullable else None
    return default


def predicted(before, changes):
    """The 36 tables' columns after applying the report's changes to the snapshot taken before (the new
    tables are checked on their own)."""
    tables = {t: [list(c) for c in cols] for t, cols in before.items()}
    for c in changes:
        if c.table not in before:
            continue
        cols = tables[c.table]
        names = [col[0] for col in cols]
        if c.kind == "added":
            cols.append([c.column, len(cols) + 1, c.new_type, "YES" if c.nullable else "NO", None, ""])
            cols[-1][4] = shown_default(c.nullable, c.default)
        elif c.kind == "dropped":
            del cols[names.index(c.column)]
            for position, col in enumerate(cols, 1):
                col[1] = position
        else:  # widened, enum_extended, renamed: same position, new type (and name)
            col = cols[names.index(c.old_column or c.column)]
            col[0], col[2] = c.column, c.new_type
    return {t: [tuple(col) for col in cols] for t, cols in tables.items()}


@pytest.fixture(scope="module")
def upgraded(admin):
    cfg = replace(admin, database=DB)
    generate(cfg, SCALE, seed=SEED)
    conn = connect_source(admin)
    conn.autocommit(True)
    cur = conn.cursor()
    before = columns(cur, DB)
    values = {(t, old): value_digest(cur, DB, t, old) for t, old, _ in KEPT_VALUES}
    rows = {}
    for table in TABLE_NAMES:
        cur.execute(f"SELECT COUNT(*) FROM `{DB}`.`{table}`")
        rows[table] = cur.fetchone()[0]
    report = upgrade(cfg, seed=1)
    sums = checksums(cur, DB, [*TABLE_NAMES, *NEW_TABLES])
    conn.close()
    yield {"cfg": cfg, "before": before, "values": values, "rows": rows, "report": report, "checksums": sums}
    conn = connect_source(admin)
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    conn.close()


def test_report_lists_both_steps_in_order(upgraded):
    report = upgraded["report"]
    assert (report.from_version, report.to_version, report.steps) == ("23.3", "24.2", ["24.1", "24.2"])
    listed = [
        (c.version, c.kind, c.table, c.column, c.old_type, c.new_type, c.old_column) for c in report.changes
    ]
    assert listed == EXPECTED
    assert report.rows_inserted == {"erxlog": 6, "apptreminderrule": 4}
    assert tuple(NEW_TABLES) == upgrade_module.ADDED_TABLES
    assert report.to_dict()["changes"][12]["old_column"] == "ProvBarText"
    assert (
        "ALTER TABLE `appointment` CHANGE COLUMN `ProvBarText` `ProviderBarText` varchar(60) NOT NULL"
        in report.statements
    )


def test_information_schema_shows_exactly_the_listed_changes(upgraded, cur):
    report, before = upgraded["report"], upgraded["before"]
    after = columns(cur, DB)
    assert set(after) == set(before) | set(NEW_TABLES)
    expected = predicted(before, report.changes)
    for table in before:
        assert after[table] == expected[table], table


def test_widened_and_renamed_columns_keep_nullability_default_and_values(upgraded, cur):
    report, before = upgraded["report"], upgraded["before"]
    for c in report.changes:
        if c.kind in ("widened", "renamed"):
            old = next(col for col in before[c.table] if col[0] == (c.old_column or c.column))
            assert ("YES" if c.nullable else "NO", shown_default(c.nullable, c.default)) == (
                old[3],
                old[4],
            ), c
    for table, old, new in KEPT_VALUES:
        assert value_digest(cur, DB, table, new) == upgraded["values"][(table, old)], (table, new)
    # the renamed column sits where the old one was, and the old name is gone
    names = [col[0] for col in columns(cur, DB)["appointment"]]
    old_names = [col[0] for col in before["appointment"]]
    assert names.index("ProviderBarText") == old_names.index("ProvBarText")
    assert "ProvBarText" not in names and "TrophyFolder" not in [c[0] for c in columns(cur, DB)["patient"]]


def test_added_columns_hold_their_default_in_every_existing_row(upgraded, cur):
    rows = upgraded["rows"]
    for table, column, condition in (
        ("patient", "PreferredPronoun", "= 0"),
        ("procedurelog", "ExternalNote", "IS NULL"),
        ("definition", "ItemExtra", "= ''"),
        ("provider", "NpiTaxonomy", "IS NULL"),
        ("paysplit", "IsInterestSplit", "= 0"),
    ):
        cur.execute(f"SELECT COUNT(*) FROM `{DB}`.`{table}` WHERE `{column}` {condition}")
        assert cur.fetchone()[0] == rows[table] > 0, (table, column)


def test_new_tables_have_a_key_an_on_update_stamp_and_rows(upgraded, cur):
    after = columns(cur, DB)
    for table, (pk, stamp, rows) in NEW_TABLES.items():
        cur.execute(
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (DB, table),
        )
        assert cur.fetchone()[0] == "InnoDB"
        cols = {c[0]: c for c in after[table]}
        assert cols[pk][1] == 1 and cols[pk][2] == "bigint(20)" and cols[pk][5] == "auto_increment"
        assert cols[stamp][2] == "timestamp" and cols[stamp][5] == "on update current_timestamp()"
        cur.execute(f"SELECT COUNT(*), COUNT(DISTINCT `{pk}`) FROM `{DB}`.`{table}`")
        assert cur.fetchone() == (rows, rows)
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "AND INDEX_NAME = 'PRIMARY'",
            (DB, table),
        )
        assert cur.fetchall() == ((pk,),)
    type_cur = {c[0]: c for c in after["apptreminderrule"]}["TypeCur"]
    assert (type_cur[2], type_cur[3], type_cur[4]) == (EXPECTED[-1][5], "NO", "'Reminder'")
    cur.execute(f"SELECT TypeCur, COUNT(*) FROM `{DB}`.apptreminderrule GROUP BY TypeCur ORDER BY TypeCur")
    assert cur.fetchall() == (
        ("Reminder", 1),
        ("ConfirmationFutureDay", 1),
        ("ScheduleThankYou", 1),
        ("Arrival", 1),
    )
    # every eRx row points at an existing patient
    cur.execute(
        f"SELECT COUNT(*) FROM `{DB}`.erxlog e LEFT JOIN `{DB}`.patient p ON p.PatNum = e.PatNum WHERE p.PatNum IS NULL"
    )
    assert cur.fetchone()[0] == 0


def test_changes_are_documented_and_the_widened_flag_is_read_by_staging(upgraded):
    doc = upgrade_module.__doc__
    for c in upgraded["report"].changes:
        assert c.table in doc and (c.column is None or c.column in doc), c
        if c.old_column:
            assert f"{c.old_column} -> {c.column}" in doc
    assert "ishygiene" in (STAGING / "stg_opendental__appointment.sql").read_text()
    assert "baseunits" in (STAGING / "stg_opendental__procedurelog.sql").read_text()


def test_upgrading_again_is_refused_and_changes_nothing(upgraded, admin, cur):
    cfg = upgraded["cfg"]
    before = columns(cur, DB)
    with pytest.raises(UpgradeRefused, match="already at version 24.2"):
        upgrade(cfg)
    with pytest.raises(UpgradeRefused, match="already at version 24.2"):
        upgrade(cfg, "24.2")
    with pytest.raises(UpgradeRefused, match="at version 24.2, newer than 24.1"):
        upgrade(cfg, "24.1")
    with pytest.raises(ConfigError, match=r"known: 24\.1, 24\.2"):
        upgrade(cfg, "25.9")
    assert columns(cur, DB) == before
    cur.execute(f"USE {DB}")
    assert source_version(cur, DB) == "24.2"


def schema_statements(report):
    return [s for s in report.statements if not s.startswith("INSERT")]


def test_steps_one_at_a_time_give_the_same_database_and_the_seed_only_picks_rows(upgraded, admin, cur):
    other = "opendental_upgrade_b"
    cfg = replace(admin, database=other)
    full = upgraded["report"]
    try:
        generate(cfg, SCALE, seed=SEED)
        first = upgrade(cfg, "24.1", seed=1)
        assert (first.from_version, first.steps) == ("23.3", ["24.1"])
        assert {c.version for c in first.changes} == {"24.1"}
        second = upgrade(cfg, seed=1)
        assert (second.from_version, second.steps) == ("24.1", ["24.2"])
        assert first.changes + second.changes == full.changes
        assert first.statements + second.statements == full.statements
        assert checksums(cur, other, [*TABLE_NAMES, *NEW_TABLES]) == upgraded["checksums"]

        # a rebuild is back at 23.3 (the upgrade's tables are made again); another seed, other rows only
        generate(cfg, SCALE, seed=SEED)
        cur.execute(f"USE {other}")
        assert source_version(cur, other) == "23.3"
        reseeded = upgrade(cfg, seed=2)
        assert reseeded.from_version == "23.3" and reseeded.changes == full.changes
        assert schema_statements(reseeded) == schema_statements(full)
        assert reseeded.statements != full.statements
        sums = checksums(cur, other, [*TABLE_NAMES, *NEW_TABLES])
        assert {t: sums[t] for t in TABLE_NAMES} == {t: upgraded["checksums"][t] for t in TABLE_NAMES}
        assert sums["erxlog"] != upgraded["checksums"]["erxlog"]
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {other}")


def test_mutate_and_live_keep_working_after_an_upgrade(upgraded, cur):
    cfg = upgraded["cfg"]
    counts = mutate(cfg, 1, seed=7, quiet=True)
    assert counts["appointment"]["inserted"] > 0 and counts["patient"]["inserted"] > 0
    report = run_live(cfg, 40, 1, seed=2, hold_seconds=0)
    assert report.operations == report.planned_operations == 40
    assert dangling_foreign_keys(cur, DB) == {}
    assert broken_money_rules(cur, DB) == {}


def test_the_cli_refuses_an_unknown_version_and_a_bad_rate_without_writing(admin, cur, capsys):
    from etl_pipeline.cli import main
    from etl_pipeline.errors import EXIT_CONFIG

    cur.execute(f"USE {admin.database}")
    before = columns(cur, admin.database)
    assert main(["synth", "upgrade", "--to", "25.9"]) == EXIT_CONFIG
    assert "known: 24.1, 24.2" in capsys.readouterr().err
    assert main(["synth", "live", "--rate", "0", "--seconds", "1"]) == EXIT_CONFIG
    assert "rate" in capsys.readouterr().err
    assert columns(cur, admin.database) == before
