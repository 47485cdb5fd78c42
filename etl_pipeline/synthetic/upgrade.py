"""A simulated OpenDental version upgrade of the synthetic source: `upgrade(admin_cfg, to_version, seed)`.

A freshly generated source is at version 23.3. `upgrade` applies the named steps after the source's
version up to `to_version` (default: the latest), in order, the way OpenDental's convert scripts do:
plain ALTER TABLE statements (one per table and step, its clauses in the order listed), new tables made
with DROP TABLE IF EXISTS + CREATE TABLE, a few rows in them, then the version is recorded. The schema
changes are the same for every seed; the seed only picks the rows written into the new tables.

Step 24.1
  patient           added          PreferredPronoun tinyint(4) NOT NULL DEFAULT 0
  patient           widened        Title varchar(15) -> varchar(50) (still NULL, no default)
  patient           dropped        TrophyFolder
  procedurelog      added          ExternalNote varchar(255) NULL (no default: existing rows get NULL)
  procedurelog      widened        BaseUnits int(11) -> bigint(20) (staging reads it as base_units)
  procedurelog      widened        DrugQty float -> double
  appointment       widened        IsHygiene tinyint(3) unsigned -> int(11) (staging reads it as is_hygiene)
  definition        added          ItemExtra varchar(255) NOT NULL DEFAULT ''
  provider          added          NpiTaxonomy varchar(50) NULL
  erxlog            table_added    6 rows: ErxLogNum PK, PatNum, MsgText, DateTStamp ON UPDATE, ProvNum, UserNum
  apptreminderrule  table_added    3 rows: ApptReminderRuleNum PK, TypeCur enum('Reminder',
                                   'ConfirmationFutureDay','ScheduleThankYou'), ..., SecDateTEdit ON UPDATE
Step 24.2
  paysplit          added          IsInterestSplit tinyint(4) NOT NULL DEFAULT 0
  appointment       renamed        ProvBarText -> ProviderBarText (CHANGE COLUMN, varchar(60), same position)
  provider          widened        StateLicense varchar(15) -> varchar(50) (still NULL DEFAULT '')
  clinic            added          SmsFromNumber varchar(30) NULL DEFAULT ''
  apptreminderrule  enum_extended  TypeCur + 'Arrival','PatientPortalInvite'; one 'Arrival' rule is added

Added columns go at the end of their table. The renamed and dropped columns are ones neither the dbt
staging models nor `synth mutate` nor `synth live` use, so all three keep working after an upgrade.
OpenDental itself stores enums as tinyint and none of the 36 generated tables has an ENUM column, so
the enum lives on the new apptreminderrule table (created in 24.1, extended in 24.2). The new tables are
InnoDB, the engine a current server gives the tables OpenDental's convert scripts create.

The version is kept in the comment of the `definition` table ("OpenDental schema version 24.2"): a
rebuilt source (`synth --scale S`) has a fresh definition table, so it is back at 23.3. Upgrading to the
version the source is at, or to an older one, is refused. The new rows are stamped one second after the
latest cursor value in the source (the session's `timestamp` is pinned), so the same source, version and
seed always give the same database. ALTER TABLE is not transactional: a step that fails half-way leaves
the source partly upgraded (the error says so), and the fix is a rebuild.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from etl_pipeline.db import SOURCE_ERRORS, source_reason
from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.settings import MySQLSettings
from etl_pipeline.synthetic import ddl
from etl_pipeline.synthetic.build import admin_connection
from etl_pipeline.synthetic.simulate import latest_cursor
from etl_pipeline.synthetic.sqlrand import sql_str
from etl_pipeline.synthetic.tables_sql import ACTIVE_PROVIDERS, ACTIVE_USERS
from etl_pipeline.synthetic.timeline import epoch
from etl_pipeline.type_mapping import quote_mysql_ident as q

BASELINE = "23.3"
VERSION_TABLE = "definition"
VERSION_COMMENT = "OpenDental schema version "

Kind = Literal["added", "widened", "enum_extended", "renamed", "dropped", "table_added"]


class UpgradeRefused(EtlError):
    """The source is already at (or past) the version asked for."""


@dataclass(frozen=True)
class Column:
    """A column definition as an upgrade writes it: "<type> NULL|NOT NULL [DEFAULT <literal>]"."""

    type: str
    nullable: bool = False
    default: str | None = None  # SQL literal, e.g. "0" or "''"; None = no DEFAULT clause

    def sql(self) -> str:
        text = f"{self.type} {'NULL' if self.nullable else 'NOT NULL'}"
        return text if self.default is None else f"{text} DEFAULT {self.default}"


@dataclass(frozen=True)
class Alter:
    kind: Kind
    table: str
    column: str
    new: Column | None = None  # None for a dropped column
    new_name: str | None = None  # renamed: the column's name after the step

    def clause(self) -> str:
        col = q(self.column)
        if self.kind == "dropped":
            return f"DROP COLUMN {col}"
        assert self.new is not None
        if self.kind == "added":
            return f"ADD COLUMN {col} {self.new.sql()}"
        if self.kind == "renamed":
            return f"CHANGE COLUMN {col} {q(self.new_name or '')} {self.new.sql()}"
        return f"MODIFY COLUMN {col} {self.new.sql()}"


@dataclass(frozen=True)
class Change:
    """One schema change as applied; `column` is the name after the change (None for a new table)."""

    version: str
    kind: Kind
    table: str
    column: str | None
    old_type: str | None
    new_type: str | None
    old_column: str | None = None  # renamed: the name before
    nullable: bool | None = None  # the column after the change
    default: str | None = None  # its DEFAULT literal after the change, None = no DEFAULT
    rows: int | None = None  # table_added: rows written into the new table


@dataclass
class UpgradeReport:
    database: str
    from_version: str
    to_version: str
    seed: int
    steps: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    rows_inserted: dict[str, int] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- the new tables and their rows

ERXLOG_DDL = """CREATE TABLE erxlog (
  ErxLogNum bigint(20) NOT NULL AUTO_INCREMENT,
  PatNum bigint(20) NOT NULL,
  MsgText mediumtext NOT NULL,
  DateTStamp timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  ProvNum bigint(20) NOT NULL,
  UserNum bigint(20) NOT NULL,
  PRIMARY KEY (ErxLogNum),
  KEY PatNum (PatNum),
  KEY ProvNum (ProvNum)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci"""

REMINDER_TYPES_24_1 = ("Reminder", "ConfirmationFutureDay", "ScheduleThankYou")
REMINDER_TYPES_24_2 = (*REMINDER_TYPES_24_1, "Arrival", "PatientPortalInvite")


def enum_type(members: tuple[str, ...]) -> str:
    return "enum(" + ",".join(sql_str(m) for m in members) + ")"


APPTREMINDERRULE_DDL = f"""CREATE TABLE apptreminderrule (
  ApptReminderRuleNum bigint(20) NOT NULL AUTO_INCREMENT,
  TypeCur {enum_type(REMINDER_TYPES_24_1)} NOT NULL DEFAULT 'Reminder',
  TSPrior bigint(20) NOT NULL,
  SendOrder varchar(255) NOT NULL,
  IsSendAll tinyint(4) NOT NULL,
  TemplateSMS text NOT NULL,
  TemplateEmailSubject text NOT NULL,
  TemplateEmail text NOT NULL,
  ClinicNum bigint(20) NOT NULL,
  DoNotSendWithin bigint(20) NOT NULL,
  IsEnabled tinyint(4) NOT NULL,
  SecDateTEdit timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (ApptReminderRuleNum),
  KEY ClinicNum (ClinicNum)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci"""

DRUGS = (
    "Amoxicillin 500 mg capsule",
    "Ibuprofen 600 mg tablet",
    "Chlorhexidine gluconate 0.12% rinse",
    "Clindamycin 300 mg capsule",
    "Sodium fluoride 1.1% gel",
    "Acetaminophen 500 mg tablet",
)
TICKS_PER_HOUR = 36_000_000_000  # OpenDental stores TimeSpans as .NET ticks (100 ns)
TEMPLATES = {
    "Reminder": ("Reminder: [NameF] has an appointment at [ApptTime] on [ApptDate].", "Appointment reminder"),
    "ConfirmationFutureDay": ("Reply C to confirm [NameF]'s appointment on [ApptDate].", "Please confirm"),
    "ScheduleThankYou": ("Thank you for scheduling with [OfficeName].", "Thank you"),
    "Arrival": ("Reply A when you arrive for your [ApptTime] appointment.", "Arrival check-in"),
}


@dataclass
class RowContext:
    """What a step's row writers need: a cursor, the seeded generator and the pinned clock."""

    cur: Any
    rng: random.Random
    clock: datetime

    def patient(self) -> int:
        """A seeded pick among the active patients (the same source and seed give the same one)."""
        self.cur.execute("SELECT COUNT(*) FROM patient WHERE PatStatus = 0")
        count = self.cur.fetchone()[0]
        if not count:
            raise EtlError("the source has no active patient (PatStatus 0) to write eRx rows for")
        self.cur.execute(
            "SELECT PatNum FROM patient WHERE PatStatus = 0 ORDER BY PatNum LIMIT 1 OFFSET %s",
            (self.rng.randrange(count),),
        )
        return int(self.cur.fetchone()[0])

    def stamp(self, minutes_before: int) -> str:
        return sql_str((self.clock - timedelta(minutes=minutes_before)).strftime("%Y-%m-%d %H:%M:%S"))


def erxlog_rows(ctx: RowContext) -> list[str]:
    rows = []
    for i in range(6):
        drug = ctx.rng.choice(DRUGS)
        text = f"<NewRx><Drug>{drug}</Drug><Qty>{ctx.rng.randint(6, 40)}</Qty><Refills>{ctx.rng.randint(0, 2)}</Refills></NewRx>"
        rows.append(
            f"({ctx.patient()}, {sql_str(text)}, {ctx.stamp(60 * (6 - i))}, "
            f"{ctx.rng.randint(1, ACTIVE_PROVIDERS)}, {ctx.rng.randint(1, ACTIVE_USERS)})"
        )
    return ["INSERT INTO erxlog (PatNum, MsgText, DateTStamp, ProvNum, UserNum) VALUES " + ", ".join(rows)]


def reminder_rule(ctx: RowContext, type_cur: str, hours_prior: int) -> str:
    sms, subject = TEMPLATES[type_cur]
    return (
        f"({sql_str(type_cur)}, {hours_prior * TICKS_PER_HOUR}, '0,1', {ctx.rng.randint(0, 1)}, {sql_str(sms)}, "
        f"{sql_str(subject)}, {sql_str('<p>' + sms + '</p>')}, 0, {ctx.rng.choice((2, 4, 12)) * TICKS_PER_HOUR}, 1, "
        f"{ctx.stamp(1)})"
    )


REMINDER_COLUMNS = (
    "TypeCur, TSPrior, SendOrder, IsSendAll, TemplateSMS, TemplateEmailSubject, TemplateEmail, ClinicNum, "
    "DoNotSendWithin, IsEnabled, SecDateTEdit"
)


def reminder_rules_24_1(ctx: RowContext) -> list[str]:
    values = [
        reminder_rule(ctx, "Reminder", 24 * ctx.rng.choice((1, 2, 3))),
        reminder_rule(ctx, "ConfirmationFutureDay", 24 * ctx.rng.choice((2, 3, 5))),
        reminder_rule(ctx, "ScheduleThankYou", 0),
    ]
    return [f"INSERT INTO apptreminderrule ({REMINDER_COLUMNS}) VALUES " + ", ".join(values)]


def reminder_rules_24_2(ctx: RowContext) -> list[str]:
    """The first rule of a type only 24.2 knows."""
    return [f"INSERT INTO apptreminderrule ({REMINDER_COLUMNS}) VALUES {reminder_rule(ctx, 'Arrival', 0)}"]


@dataclass(frozen=True)
class NewTable:
    name: str
    create: str
    rows: Callable[[RowContext], list[str]]


@dataclass(frozen=True)
class Step:
    version: str
    alters: tuple[Alter, ...]
    tables: tuple[NewTable, ...] = ()
    extra_rows: tuple[tuple[str, Callable[[RowContext], list[str]]], ...] = ()  # rows into existing tables


STEPS: tuple[Step, ...] = (
    Step(
        "24.1",
        alters=(
            Alter("added", "patient", "PreferredPronoun", Column("tinyint(4)", default="0")),
            Alter("widened", "patient", "Title", Column("varchar(50)", nullable=True)),
            Alter("dropped", "patient", "TrophyFolder"),
            Alter("added", "procedurelog", "ExternalNote", Column("varchar(255)", nullable=True)),
            Alter("widened", "procedurelog", "BaseUnits", Column("bigint(20)")),
            Alter("widened", "procedurelog", "DrugQty", Column("double")),
            Alter("widened", "appointment", "IsHygiene", Column("int(11)")),
            Alter("added", "definition", "ItemExtra", Column("varchar(255)", default="''")),
            Alter("added", "provider", "NpiTaxonomy", Column("varchar(50)", nullable=True)),
        ),
        tables=(
            NewTable("erxlog", ERXLOG_DDL, erxlog_rows),
            NewTable("apptreminderrule", APPTREMINDERRULE_DDL, reminder_rules_24_1),
        ),
    ),
    Step(
        "24.2",
        alters=(
            Alter("added", "paysplit", "IsInterestSplit", Column("tinyint(4)", default="0")),
            Alter("renamed", "appointment", "ProvBarText", Column("varchar(60)"), new_name="ProviderBarText"),
            Alter("widened", "provider", "StateLicense", Column("varchar(50)", nullable=True, default="''")),
            Alter("added", "clinic", "SmsFromNumber", Column("varchar(30)", nullable=True, default="''")),
            Alter(
                "enum_extended",
                "apptreminderrule",
                "TypeCur",
                Column(enum_type(REMINDER_TYPES_24_2), default="'Reminder'"),
            ),
        ),
        extra_rows=(("apptreminderrule", reminder_rules_24_2),),
    ),
)
VERSIONS: tuple[str, ...] = tuple(step.version for step in STEPS)
LATEST = VERSIONS[-1]
ADDED_TABLES: tuple[str, ...] = tuple(table.name for step in STEPS for table in step.tables)


# ---------------------------------------------------------------- running it


def upgrade(admin_cfg: MySQLSettings, to_version: str | None = None, seed: int = 1) -> UpgradeReport:
    """Apply the upgrade steps after the source's version up to `to_version` (default: the latest)."""
    target = _check_version(to_version)
    conn = admin_connection(admin_cfg)
    cur = conn.cursor()
    try:
        _require_source(cur, admin_cfg)
        cur.execute(f"USE {q(admin_cfg.database)}")
        current = source_version(cur, admin_cfg.database)
        steps = _steps_between(current, target, admin_cfg)
        report = UpgradeReport(admin_cfg.database, current, target, int(seed))
        clock = latest_cursor(cur) + timedelta(seconds=1)
        cur.execute(f"SET timestamp = {epoch(clock)}")
        for step in steps:
            ctx = RowContext(cur, random.Random(f"upgrade/{int(seed)}/{step.version}"), clock)
            _apply_step(cur, admin_cfg, step, ctx, report)
            report.steps.append(step.version)
    finally:
        conn.close()
    return report


def source_version(cur: Any, database: str) -> str:
    cur.execute(
        "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
        (database, VERSION_TABLE),
    )
    comment = (cur.fetchone() or ("",))[0] or ""
    if not comment.startswith(VERSION_COMMENT):
        return BASELINE
    version = comment[len(VERSION_COMMENT) :].strip()
    if version not in VERSIONS:
        raise EtlError(
            f"the source's {VERSION_TABLE} table says it is at version {version!r}, which this simulator does "
            f"not know (it knows {BASELINE}, {', '.join(VERSIONS)}): rebuild it with `synth --scale S`"
        )
    return version


def _check_version(to_version: str | None) -> str:
    if to_version is None:
        return LATEST
    if to_version not in VERSIONS:
        raise ConfigError(
            f"--to {to_version!r} is not a known upgrade version (known: {', '.join(VERSIONS)})"
        )
    return to_version


def _steps_between(current: str, target: str, admin_cfg: MySQLSettings) -> list[Step]:
    if current == target:
        raise UpgradeRefused(
            f"source {admin_cfg.display} is already at version {target}: nothing to upgrade "
            "(rebuild it with `synth --scale S` to start again from " + BASELINE + ")"
        )
    order = (BASELINE, *VERSIONS)
    if order.index(current) > order.index(target):
        raise UpgradeRefused(
            f"source {admin_cfg.display} is at version {current}, newer than {target}: "
            "an OpenDental database cannot be downgraded"
        )
    return [step for step in STEPS if order.index(current) < order.index(step.version) <= order.index(target)]


def _require_source(cur: Any, admin_cfg: MySQLSettings) -> None:
    cur.execute(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (admin_cfg.database,)
    )
    missing = set(ddl.TABLE_NAMES) - {row[0] for row in cur.fetchall()}
    if missing:
        raise EtlError(
            f"source {admin_cfg.display} lacks {len(missing)} OpenDental tables "
            f"(e.g. {min(missing)}): run `synth --scale S` first"
        )


def _column_types(cur: Any, database: str, table: str) -> dict[str, str]:
    cur.execute(
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s",
        (database, table),
    )
    return dict(cur.fetchall())


def _check_preconditions(cur: Any, database: str, step: Step) -> dict[str, dict[str, str]]:
    """The column types of every table the step alters; refuses a schema that does not fit the step."""
    types = {}
    for alter in step.alters:
        if alter.table not in types:
            types[alter.table] = _column_types(cur, database, alter.table)
        present = alter.column in types[alter.table]
        if present == (alter.kind == "added"):
            state = "already has" if present else "lacks"
            raise EtlError(
                f"upgrade step {step.version}: {alter.table} {state} column {alter.column}, so the source is "
                "not at the version it claims: rebuild it with `synth --scale S`"
            )
    return types


def _apply_step(
    cur: Any, admin_cfg: MySQLSettings, step: Step, ctx: RowContext, report: UpgradeReport
) -> None:
    types = _check_preconditions(cur, admin_cfg.database, step)
    statements: list[tuple[str, str]] = []  # (table, sql)
    for table in dict.fromkeys(alter.table for alter in step.alters):
        clauses = [alter.clause() for alter in step.alters if alter.table == table]
        statements.append((table, f"ALTER TABLE {q(table)} " + ", ".join(clauses)))
    rows: list[tuple[str, str]] = []
    for new in step.tables:
        statements += [(new.name, f"DROP TABLE IF EXISTS {q(new.name)}"), (new.name, new.create)]
        rows += [(new.name, sql) for sql in new.rows(ctx)]
    rows += [(table, sql) for table, writer in step.extra_rows for sql in writer(ctx)]
    marker = f"ALTER TABLE {q(VERSION_TABLE)} COMMENT = {sql_str(VERSION_COMMENT + step.version)}"
    inserted: dict[str, int] = {}
    for table, sql in [*statements, *rows, (VERSION_TABLE, marker)]:
        try:
            cur.execute(sql)
        except SOURCE_ERRORS as exc:
            raise EtlError(
                f"upgrade step {step.version} failed on table {table} of {admin_cfg.display}: "
                f"{source_reason(exc)}; "
                "the source is partly upgraded: rebuild it with `synth --scale S`"
            ) from None
        report.statements.append(sql)
        if sql.startswith("INSERT"):
            inserted[table] = inserted.get(table, 0) + cur.rowcount
    for table, count in inserted.items():
        report.rows_inserted[table] = report.rows_inserted.get(table, 0) + count
    report.changes += _changes(step, types, inserted)


def _changes(step: Step, types: dict[str, dict[str, str]], inserted: dict[str, int]) -> list[Change]:
    changes = []
    for alter in step.alters:
        new = alter.new
        changes.append(
            Change(
                version=step.version,
                kind=alter.kind,
                table=alter.table,
                column=alter.new_name or alter.column,
                old_type=types[alter.table].get(alter.column),
                new_type=new.type if new else None,
                old_column=alter.column if alter.kind == "renamed" else None,
                nullable=new.nullable if new else None,
                default=new.default if new else None,
            )
        )
    for table in step.tables:
        changes.append(
            Change(
                step.version, "table_added", table.name, None, None, None, rows=inserted.get(table.name, 0)
            )
        )
    return changes
