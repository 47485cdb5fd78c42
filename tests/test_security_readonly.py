"""The source is read with a read-only user and the code never issues a write to it: MariaDB's general log
records every statement `etl_reader` sends during analyze-schema, run, verify --deep and an incremental
run; each must be a read. The user's grants are SELECT and SHOW VIEW only."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from etl_pipeline.db import SOURCE_OPERATIONAL_ERRORS, connect_source
from etl_pipeline.settings import PROJECT_ROOT

READER = "etl_reader"
# first keyword of a statement the reader may send; anything else (INSERT, UPDATE, DELETE, REPLACE,
# CREATE, ALTER, DROP, TRUNCATE, GRANT, LOCK, LOAD, CALL, HANDLER, DO, RENAME, FLUSH...) is a write or worse
READ_KEYWORDS = {
    "SELECT",
    "SHOW",
    "SET",
    "USE",
    "EXPLAIN",
    "DESCRIBE",
    "DESC",
    "WITH",
    "START",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "(SELECT",
}
WRITE_SETS = re.compile(
    r"^\s*(SET\s+(GLOBAL|@@GLOBAL|PASSWORD|ROLE|DEFAULT\s+ROLE)\b|START\s+(?!TRANSACTION))", re.IGNORECASE
)
COMMENT = re.compile(r"/\*.*?\*/|^\s*--[^\n]*\n|^\s*#[^\n]*\n", re.DOTALL)


def _admin(settings, *sql):
    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    rows = None
    for statement in sql:
        cur.execute(statement)
        rows = cur.fetchall() if cur.description else rows
    conn.commit()
    conn.close()
    return rows


def _cli(config_dir, *args):
    proc = subprocess.run(
        [sys.executable, "-m", "etl_pipeline.cli", *args],
        check=False,
        cwd=PROJECT_ROOT,
        env=dict(os.environ, ETL_CONFIG_DIR=str(config_dir)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    return proc


def first_keyword(statement: str) -> str:
    text = COMMENT.sub(" ", statement).strip()
    return text.split(None, 1)[0].upper() if text else ""


def is_read(statement: str) -> bool:
    return first_keyword(statement) in READ_KEYWORDS and not WRITE_SETS.match(COMMENT.sub(" ", statement))


@pytest.mark.parametrize(
    "statement,read",
    [
        ("SELECT 1", True),
        ("/* x */ select `a` from t", True),
        ("SET time_zone = '+00:00'", True),
        ("SET GLOBAL general_log = 1", False),
        ("INSERT INTO t VALUES (1)", False),
        ("LOCK TABLES t READ", False),
        ("REPLACE INTO t VALUES (1)", False),
        ("CALL p()", False),
        ("LOAD DATA INFILE 'x' INTO TABLE t", False),
        ("DROP TABLE t", False),
        ("START TRANSACTION READ ONLY", True),
        ("START SLAVE", False),
        ("TRUNCATE t", False),
        ("GRANT ALL ON *.* TO x", False),
    ],
)
def test_statement_classifier(statement, read):
    assert is_read(statement) is read


def test_reader_grants_are_select_and_show_view_only(settings):
    assert settings.source.user == READER
    for host in ("127.0.0.1", "localhost"):
        grants = [g for (g,) in _admin(settings, f"SHOW GRANTS FOR '{READER}'@'{host}'")]
        privileges = set()
        for grant in grants:
            m = re.match(r"GRANT (.+?) ON (\S+) TO", grant)
            if m[1] == "USAGE":
                continue
            assert m[2] == "`opendental`.*", grant
            privileges |= {p.strip() for p in m[1].split(",")}
        assert privileges == {"SELECT", "SHOW VIEW"}, grants


def test_reader_cannot_write(settings):
    conn = connect_source(settings.source)
    cur = conn.cursor()
    with pytest.raises(SOURCE_OPERATIONAL_ERRORS, match="denied"):
        cur.execute("CREATE TABLE ro_probe (id int)")
    conn.close()


def test_the_loader_only_reads_the_source(settings, tmp_path):
    _cli(tmp_path, "synth", "--scale", "0.01", "--seed", "3")
    (marker,) = _admin(settings, "SELECT NOW(6)")[0]
    _admin(settings, "SET GLOBAL log_output = 'TABLE'", "SET GLOBAL general_log = 1")
    try:
        _cli(tmp_path, "analyze-schema")
        _cli(tmp_path, "run", "--full-refresh")  # the source was just rebuilt: old cursors mean nothing
        _cli(tmp_path, "verify", "--deep")
        _cli(tmp_path, "run")  # incremental, nothing changed at the source
    finally:
        _admin(settings, "SET GLOBAL general_log = 0")
    rows = _admin(
        settings,
        "SELECT command_type, CONVERT(argument USING utf8mb4) FROM mysql.general_log "
        f"WHERE event_time >= '{marker}' AND user_host LIKE '{READER}[%%' "
        "AND command_type IN ('Query', 'Execute', 'Prepare')".replace("%%", "%"),
    )
    statements = [sql for _, sql in rows]
    assert len(statements) > 100, "the general log saw too few reader statements: is it on?"
    writes = [s[:120] for s in statements if not is_read(s)]
    assert not writes, f"{len(writes)} non-read statements from {READER}: {writes[:10]}"
    _admin(settings, "TRUNCATE mysql.general_log")
