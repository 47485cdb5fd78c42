"""The synthetic OpenDental source: schema faithful to the facts file, rows that hang together, the
quirks an ETL must survive, determinism, and bad input refused without leaving anything half-built."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import yaml

from etl_pipeline.cli import main
from etl_pipeline.db import connect_source
from etl_pipeline.errors import EXIT_CONFIG, ConfigError, ConnectionFailed, EtlError
from etl_pipeline.settings import PROJECT_ROOT
from etl_pipeline.synthetic import build as build_module
from etl_pipeline.synthetic import generate, mutate
from etl_pipeline.synthetic.fks import FOREIGN_KEYS, MAY_DANGLE
from etl_pipeline.synthetic.integrity import broken_money_rules, dangling_foreign_keys
from etl_pipeline.synthetic.tables_sql import row_counts
from etl_pipeline.synthetic.timeline import generation_now

FACTS = PROJECT_ROOT.parent / "shared" / "opendental_schema.yml"
SCALE = 0.01
DB = "opendental"


@pytest.fixture(scope="module")
def admin(settings):
    return settings.source_admin


@pytest.fixture(scope="module")
def built(admin):
    return generate(admin, SCALE, seed=42)


@pytest.fixture()
def cur(admin, built):
    conn = connect_source(admin)
    cursor = conn.cursor()
    yield cursor
    conn.close()


def scalar(cur, sql):
    cur.execute(sql)
    return cur.fetchone()[0]


# ---------------------------------------------------------------- schema vs the facts file


def facts_columns() -> dict[str, list[tuple[str, str]]]:
    tables = yaml.safe_load(FACTS.read_text())["tables"]
    return {t: [(c, str(spec)) for c, spec in facts["columns"].items()] for t, facts in tables.items()}


def expected_column(spec: str) -> dict:
    """What information_schema should say for a facts-file spec, parsed independently of the package."""
    m = re.match(r"^([a-z]+(?:\(\d+\))?(?: unsigned)?)", spec)
    col_type = m.group(1)
    nullable = bool(re.search(r"\bNULL\b", spec.replace("CURRENT_TIMESTAMP", "")))
    default = re.search(r"DEFAULT ('[^']*'|-?[\d.]+)", spec)
    if col_type == "timestamp":
        default_value = "current_timestamp()"
    elif default:
        default_value = default.group(1)
    else:
        default_value = "NULL" if nullable else None
    collation = re.search(r"COLLATE (\w+)", spec)
    return {
        "type": col_type,
        "nullable": "YES" if nullable else "NO",
        "default": default_value,
        "collation": collation.group(1) if collation else None,
        "on_update": "ON UPDATE" in spec,
        "auto": "AUTO_INCREMENT" in spec,
    }


@pytest.mark.skipif(not FACTS.is_file(), reason=f"facts file {FACTS} not present (outside the dev workspace)")
def test_tables_and_columns_match_the_facts_file(cur):
    facts = facts_columns()
    assert len(facts) == 36
    problems = []
    for table, columns in facts.items():
        cur.execute(
            "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (DB, table),
        )
        row = cur.fetchone()
        if row is None or row[0] != "MyISAM":
            problems.append(f"{table}: missing or not MyISAM ({row})")
            continue
        cur.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, COLLATION_NAME, EXTRA "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION",
            (DB, table),
        )
        actual = {r[0]: r[1:] for r in cur.fetchall()}
        if list(actual) != [c for c, _ in columns]:
            problems.append(f"{table}: column list/order differs")
        for column, spec in columns:
            want = expected_column(spec)
            col_type, nullable, default, collation, extra = actual.get(column, (None,) * 5)
            got = {
                "type": col_type,
                "nullable": nullable,
                "default": default,
                "collation": collation if want["collation"] else None,
                "on_update": "on update current_timestamp()" in (extra or ""),
                "auto": "auto_increment" in (extra or ""),
            }
            if got != want:
                problems.append(f"{table}.{column}: want {want}, got {got}")
    assert problems == []


def test_binary_collation_is_case_sensitive(cur):
    assert scalar(cur, "SELECT COUNT(*) FROM procedurecode WHERE ProcCode = 'D0120'") == 1
    assert scalar(cur, "SELECT COUNT(*) FROM procedurecode WHERE ProcCode = 'd0120'") == 1


# ---------------------------------------------------------------- volumes and integrity


def test_row_counts_follow_the_scale(built):
    assert len(built) == 36
    expected = row_counts(SCALE)
    for table in ("patient", "appointment", "procedurelog", "paysplit", "commlog", "securitylog"):
        assert built[table] == expected[table]
    assert max(built, key=built.get) == "securitylog"
    assert built["clinic"] == 0 and built["definition"] == 655


@pytest.mark.parametrize("table,column,target", FOREIGN_KEYS, ids=[f"{t}.{c}" for t, c, _ in FOREIGN_KEYS])
def test_foreign_key_points_at_existing_rows(cur, table, column, target):
    if (table, column) in MAY_DANGLE:
        pytest.skip("history rows may keep numbers of deleted rows")
    from etl_pipeline.synthetic.schema_data import TABLES

    pk = TABLES[target]["pk"]
    dangling = scalar(
        cur,
        f"SELECT COUNT(*) FROM `{table}` c LEFT JOIN `{target}` t ON t.`{pk}` = c.`{column}` "
        f"WHERE c.`{column}` <> 0 AND t.`{pk}` IS NULL",
    )
    assert dangling == 0


def test_key_relationships_are_used(cur):
    """Not just zeros: the main relationships are populated."""
    assert scalar(cur, "SELECT COUNT(*) FROM procedurelog WHERE AptNum <> 0") > 0
    assert scalar(cur, "SELECT COUNT(*) FROM patient WHERE Guarantor <> PatNum") > 0
    assert scalar(cur, "SELECT COUNT(*) FROM claimproc WHERE ClaimNum <> 0 AND ClaimPaymentNum <> 0") > 0
    assert scalar(cur, "SELECT COUNT(*) FROM paysplit WHERE ProcNum <> 0") > 0
    assert scalar(cur, "SELECT COUNT(*) FROM claimproc WHERE Status = 6 AND ClaimNum = 0") > 0
    assert (
        scalar(cur, "SELECT COUNT(*) FROM payment WHERE PayType = 0 AND PayAmt = 0") > 0
    )  # income transfers


def test_money_adds_up_and_the_check_catches_a_break(cur):
    assert broken_money_rules(cur, DB) == {}
    assert dangling_foreign_keys(cur, DB) == {}
    cur.execute("UPDATE payment SET PayAmt = PayAmt + 1, SecDateTEdit = SecDateTEdit WHERE PayNum = 1")
    cur.execute(
        "UPDATE claimproc SET ClaimNum = 99999999, SecDateTEdit = SecDateTEdit "
        "WHERE ClaimProcNum = (SELECT MIN(ClaimProcNum) FROM claimproc WHERE ClaimNum = 0) LIMIT 1"
    )
    try:
        assert "paysplits sum to payment.PayAmt" in broken_money_rules(cur, DB)
        assert "claimproc.ClaimNum -> claim" in dangling_foreign_keys(cur, DB)
    finally:
        cur.execute("UPDATE payment SET PayAmt = PayAmt - 1, SecDateTEdit = SecDateTEdit WHERE PayNum = 1")
        cur.execute(
            "UPDATE claimproc SET ClaimNum = 0, SecDateTEdit = SecDateTEdit WHERE ClaimNum = 99999999"
        )


def test_statuses_and_enums(cur):
    cur.execute("SELECT DISTINCT ClaimStatus FROM claim")
    statuses = {r[0] for r in cur.fetchall()}
    assert statuses <= set("UHWSRI") and {"R", "S"} <= statuses
    cur.execute("SELECT DISTINCT AptStatus FROM appointment")
    assert {1, 2, 5} <= {r[0] for r in cur.fetchall()}
    cur.execute("SELECT DISTINCT ProcStatus FROM procedurelog")
    assert {1, 2, 6} <= {r[0] for r in cur.fetchall()}
    assert scalar(cur, "SELECT COUNT(*) FROM patient WHERE PatStatus = 4") > 0


@pytest.mark.parametrize(
    "table,column,category",
    [
        ("appointment", "Confirmed", 2),
        ("patient", "BillingType", 4),
        ("payment", "PayType", 10),
        ("procedurecode", "ProcCat", 11),
        ("commlog", "CommType", 27),
        ("adjustment", "AdjType", 1),
        ("document", "DocCategory", 18),
        ("claimpayment", "PayType", 32),
    ],
)
def test_definition_fks_use_their_category(cur, table, column, category):
    assert (
        scalar(
            cur,
            f"SELECT COUNT(*) FROM `{table}` t JOIN definition d ON d.DefNum = t.`{column}` "
            f"WHERE d.Category <> {category}",
        )
        == 0
    )
    assert scalar(cur, f"SELECT COUNT(*) FROM `{table}` WHERE `{column}` <> 0") > 0


# ---------------------------------------------------------------- quirks

QUIRKS = {
    "0001-01-01 sentinel": "SELECT COUNT(*) FROM patient WHERE Birthdate = '0001-01-01'",
    "zero dates": "SELECT (SELECT COUNT(*) FROM procedurelog WHERE DateTP = '0000-00-00') + "
    "(SELECT COUNT(*) FROM document WHERE DateCreated = '0000-00-00 00:00:00')",
    "NULL for empty": "SELECT COUNT(*) FROM patient WHERE MiddleI IS NULL",
    "'' for empty": "SELECT COUNT(*) FROM patient WHERE MiddleI = ''",
    "-1 sentinels": "SELECT COUNT(*) FROM claimproc WHERE Percentage = -1 AND CopayAmt = -1",
    "TIME values": "SELECT COUNT(*) FROM procedurelog WHERE ProcTime > '00:00:00'",
    "nullable TIME set": "SELECT COUNT(*) FROM patient WHERE SchedBeforeTime IS NOT NULL",
    "CR/LF in notes": "SELECT COUNT(*) FROM commlog WHERE Note LIKE CONCAT('%', CHAR(13), CHAR(10), '%')",
    "tabs in notes": "SELECT COUNT(*) FROM commlog WHERE Note LIKE CONCAT('%', CHAR(9), '%')",
    "backslashes": "SELECT COUNT(*) FROM commlog WHERE LOCATE(CHAR(92), Note) > 0",
    "non-ASCII": "SELECT COUNT(*) FROM commlog WHERE LENGTH(Note) <> CHAR_LENGTH(Note)",
    "large base64 blobs": "SELECT COUNT(*) FROM document WHERE LENGTH(RawBase64) > 10000",
    "negative money": "SELECT COUNT(*) FROM adjustment WHERE AdjAmt < 0",
    "sparse PKs": "SELECT COUNT(*) FROM employer WHERE EmployerNum % 24 = 0 AND EmployerNum > 24",
    "mediumtext bodies": "SELECT COUNT(*) FROM statement WHERE LENGTH(EmailBody) > 1000",
}


@pytest.mark.parametrize("quirk", list(QUIRKS))
def test_quirk_is_present(cur, quirk):
    assert scalar(cur, QUIRKS[quirk]) > 0


def test_cursors_share_seconds_and_stay_before_now(cur):
    for table, column in (("patient", "DateTStamp"), ("commlog", "DateTStamp"), ("paysplit", "SecDateTEdit")):
        biggest_second = scalar(
            cur, f"SELECT MAX(n) FROM (SELECT COUNT(*) n FROM `{table}` GROUP BY `{column}`) x"
        )
        assert biggest_second >= 10, table
    now = generation_now(42)
    assert scalar(cur, "SELECT MAX(LogDateTime) FROM securitylog") <= now
    assert scalar(cur, "SELECT MAX(SecDateTEdit) FROM claimproc") <= now


# ---------------------------------------------------------------- determinism


def table_checksums(cur, database):
    cur.execute("CHECKSUM TABLE " + ", ".join(f"`{database}`.`{t}`" for t in facts_table_names()))
    return {row[0]: row[1] for row in cur.fetchall()}


def facts_table_names():
    from etl_pipeline.synthetic.ddl import TABLE_NAMES

    return TABLE_NAMES


def test_same_seed_gives_the_same_database(admin, cur):
    other = replace(admin, database="opendental_det")
    try:
        generate(other, SCALE, seed=5)
        first = table_checksums(cur, "opendental_det")
        generate(other, SCALE, seed=5)
        assert table_checksums(cur, "opendental_det") == first
        generate(other, SCALE, seed=6)
        changed = table_checksums(cur, "opendental_det")
        assert changed["opendental_det.patient"] != first["opendental_det.patient"]
    finally:
        cur.execute("DROP DATABASE IF EXISTS opendental_det")


# ---------------------------------------------------------------- mutate


def snapshot(cur, database):
    from etl_pipeline.synthetic.schema_data import TABLES
    from etl_pipeline.synthetic.simulate import cursor_column

    snap = {}
    for table in facts_table_names():
        column = cursor_column(table)
        cur.execute(
            f"SELECT `{TABLES[table]['pk']}`, {f'`{column}`' if column else 'NULL'} "
            f"FROM `{database}`.`{table}`"
        )
        snap[table] = dict(cur.fetchall())
    return snap


def test_mutate_counts_match_what_changed(admin, cur):
    db = "opendental_mut"
    cfg = replace(admin, database=db)
    try:
        generate(cfg, 0.02, seed=3)
        before = snapshot(cur, db)
        counts = mutate(cfg, 3, seed=7, quiet=True)
        after = snapshot(cur, db)
        for table in facts_table_names():
            old, new = before[table], after[table]
            expected = {
                "inserted": len(new.keys() - old.keys()),
                "deleted": len(old.keys() - new.keys()),
                "updated": sum(1 for pk in old.keys() & new.keys() if old[pk] != new[pk]),
            }
            assert counts[table] == expected, table
        for table in ("appointment", "paysplit", "claimproc", "patplan"):
            assert counts[table]["deleted"] > 0, table
        for table in (
            "patient",
            "appointment",
            "procedurelog",
            "payment",
            "paysplit",
            "claim",
            "claimproc",
            "commlog",
            "securitylog",
            "histappointment",
        ):
            assert counts[table]["inserted"] > 0, table
        assert counts["patient"]["updated"] > 0 and counts["procedurelog"]["updated"] > 0
        assert dangling_foreign_keys(cur, db) == {}
        assert broken_money_rules(cur, db) == {}
        # new cursor values sort after everything that was there before
        old_max = max(v for t in before.values() for v in t.values() if v is not None)
        assert (
            scalar(
                cur, f"SELECT MIN(DateTStamp) FROM {db}.commlog WHERE CommlogNum > {max(before['commlog'])}"
            )
            > old_max
        )
        assert (
            scalar(
                cur,
                f"SELECT MAX(n) FROM (SELECT COUNT(*) n FROM {db}.securitylog "
                f"WHERE SecurityLogNum > {max(before['securitylog'])} GROUP BY LogDateTime) x",
            )
            >= 10
        )
        cur.execute(
            f"SELECT COUNT(*) FROM {db}.procedurelog WHERE ProcStatus = 6 AND DateTStamp > %s", (old_max,)
        )
        assert cur.fetchone()[0] > 0
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")


def test_mutate_cli_prints_json(built, capsys):
    import json

    assert main(["synth", "mutate", "--days", "1", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["appointment"]["inserted"] > 0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("scale", ["-1", "0", "abc", "nan", "1e9"])
def test_bad_scale_is_refused(admin, scale, capsys):
    with pytest.raises(ConfigError):
        generate(admin, scale)
    assert main(["synth", "--scale", scale]) == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --scale")


def test_bad_days_and_missing_source_are_refused(admin, cur):
    for days in (0, -1, 10_000):
        with pytest.raises(ConfigError):
            mutate(admin, days)
    cur.execute("CREATE DATABASE IF NOT EXISTS opendental_empty")
    try:
        with pytest.raises(EtlError, match="synth --scale"):
            mutate(replace(admin, database="opendental_empty"), 1)
    finally:
        cur.execute("DROP DATABASE opendental_empty")


def test_unreachable_server_is_one_clear_error(admin):
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        generate(replace(admin, port=1), SCALE)


def test_not_enough_disk_leaves_nothing_behind(admin, cur, monkeypatch):
    before = table_checksums(cur, DB)
    monkeypatch.setattr(build_module, "BYTES_PER_SCALE", 10**18)
    with pytest.raises(EtlError, match="GB free"):
        generate(admin, SCALE)
    assert table_checksums(cur, DB) == before
    assert (
        scalar(cur, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%synth_build'")
        == 0
    )


def test_failure_mid_build_drops_the_scratch_database_and_keeps_the_source(admin, cur, monkeypatch):
    import MySQLdb

    from etl_pipeline.synthetic.tables_sql import Builder

    def broken(self):
        raise MySQLdb.OperationalError(2013, "Lost connection to server during query")

    before = table_checksums(cur, DB)
    monkeypatch.setattr(Builder, "claim", broken)
    with pytest.raises(EtlError, match="building the synthetic source failed"):
        generate(admin, SCALE)
    assert table_checksums(cur, DB) == before
    assert (
        scalar(cur, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%synth_build'")
        == 0
    )
