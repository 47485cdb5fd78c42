"""Helpers for the schema-analysis tests: a scratch database of their own on the test stack.

The tests create source tables with DDL in a database named for the test (never `opendental`, which
other suites load), and analyse it with the admin account pointed at that database. One test reads
`opendental` with the real read-only user to prove the privileges suffice.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from etl_pipeline.db import connect_source
from etl_pipeline.settings import Settings
from etl_pipeline.type_mapping import quote_mysql_ident


def scratch_settings(settings: Settings, database: str, config_dir: Path) -> Settings:
    """Settings whose source is a fresh, empty database `database` (read with the admin user)."""
    admin = settings.source_admin
    conn = connect_source(admin)
    try:
        cur = conn.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS {quote_mysql_ident(database)}")
        cur.execute(f"CREATE DATABASE {quote_mysql_ident(database)} CHARACTER SET utf8mb3")
    finally:
        conn.close()
    source = replace(admin, database=database)
    return replace(settings, source=source, source_admin=source, config_dir=config_dir)


def execute(settings: Settings, *statements: str) -> None:
    conn = connect_source(settings.source_admin)
    try:
        cur = conn.cursor()
        for statement in statements:
            cur.execute(statement)
        conn.commit()
    finally:
        conn.close()


def drop_database(settings: Settings) -> None:
    execute(settings, f"DROP DATABASE IF EXISTS {quote_mysql_ident(settings.source.database)}")


STAMP = "timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()"

# A small OpenDental-shaped source: one table per classification rule.
OPENDENTAL_LIKE = (
    f"""CREATE TABLE patient (PatNum bigint(20) NOT NULL AUTO_INCREMENT, LName varchar(100) DEFAULT '',
        SSN varchar(100) DEFAULT '', PatStatus tinyint(3) unsigned NOT NULL DEFAULT 0,
        DateTStamp {STAMP}, SecDateEntry date NOT NULL DEFAULT '0001-01-01',
        PRIMARY KEY (PatNum), KEY (DateTStamp)) ENGINE=MyISAM""",
    f"""CREATE TABLE claimproc (ClaimProcNum bigint(20) NOT NULL AUTO_INCREMENT, InsPayAmt double NOT NULL,
        SecDateEntry date NOT NULL DEFAULT '0001-01-01', SecDateTEdit {STAMP},
        PRIMARY KEY (ClaimProcNum)) ENGINE=MyISAM""",
    """CREATE TABLE securitylog (SecurityLogNum bigint(20) NOT NULL AUTO_INCREMENT, PermType smallint(6) NOT NULL,
        LogDateTime datetime NOT NULL DEFAULT '0001-01-01 00:00:00', LogText text,
        PRIMARY KEY (SecurityLogNum)) ENGINE=MyISAM""",
    f"""CREATE TABLE histappointment (HistApptNum bigint(20) NOT NULL AUTO_INCREMENT, AptNum bigint(20) NOT NULL,
        HistDateTStamp datetime NOT NULL DEFAULT '0001-01-01 00:00:00', DateTStamp {STAMP},
        PRIMARY KEY (HistApptNum)) ENGINE=MyISAM""",
    """CREATE TABLE auditentry (AuditNum bigint(20) NOT NULL AUTO_INCREMENT, LogDateTime datetime NOT NULL,
        PRIMARY KEY (AuditNum)) ENGINE=MyISAM""",
    """CREATE TABLE definition (DefNum bigint(20) NOT NULL AUTO_INCREMENT, Category tinyint(3) unsigned NOT NULL,
        ItemOrder smallint(5) unsigned NOT NULL DEFAULT 0, ItemName varchar(255) DEFAULT '',
        PRIMARY KEY (DefNum)) ENGINE=MyISAM""",
    """CREATE TABLE userod (UserNum bigint(20) NOT NULL AUTO_INCREMENT, UserName varchar(255) DEFAULT '',
        Password varchar(255) DEFAULT '', PRIMARY KEY (UserNum)) ENGINE=MyISAM""",
    f"""CREATE TABLE scheduleop (ScheduleNum bigint(20) NOT NULL, OperatoryNum bigint(20) NOT NULL,
        DateTStamp {STAMP}, PRIMARY KEY (ScheduleNum, OperatoryNum)) ENGINE=InnoDB""",
    f"""CREATE TABLE nokey (Thing varchar(10), DateTStamp {STAMP}) ENGINE=MyISAM""",
    """CREATE TABLE prefs (PrefName varchar(255) NOT NULL, ValueString json, PRIMARY KEY (PrefName)) ENGINE=InnoDB""",
)
