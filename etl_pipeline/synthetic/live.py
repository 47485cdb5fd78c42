"""A live writer: clinic work at about `rate` statements per second, while something else reads the source.

`run_live(admin_cfg, rate, seconds, seed)` plans `ceil(rate * seconds)` statements up front, then plays them
from `writers` threads, each with its own connections, paced on the wall clock:

  schedule            appointment + a planned procedure (+ its claimproc estimate when the patient is
                      insured) + a securitylog row
  confirm             appointment.Confirmed toggled between two confirmation definitions
  delete_appointment  a scheduled/unscheduled/broken appointment hard-deleted, its procedures detached first
                      (AptNum 0, as OpenDental does) (+ log row)
  complete            a treatment-planned procedure set complete (+ log row)
  void_procedure      a treatment-planned procedure with insurance estimates soft-deleted (ProcStatus 6),
                      its estimates hard-deleted
  estimate_edit       a claimproc estimate's InsPayEst/InsEstTotal raised
  payment             a payment with one paysplit (+ log row)
  split_edit          a paysplit's amount changed, its payment's PayAmt by the same amount (+ log row)
  split_delete        a paysplit hard-deleted, its payment's PayAmt lowered (+ log row)
  commlog, commlog_edit, commlog_delete    a communication entry written, its note extended, or removed
  audit               a securitylog row alone (securitylog is insert-only)

Every update changes a value, so MariaDB's ON UPDATE CURRENT_TIMESTAMP stamps the row (DateTStamp,
SecDateTEdit) as OpenDental's own updates do; foreign keys keep pointing at existing rows and paysplits keep
summing to their payment. Updates and deletes target distinct rows that existed before the run, so no two
transactions wait on each other.

About one transaction in ten (`HOLD_SHARE`) that writes an InnoDB table is held open for `hold_seconds`
after its statements ran, while the other writers go on committing on other connections: its
auto-increment keys (and the ON UPDATE stamps it wrote) become visible after higher keys of the same table
committed. Those are the out-of-order commits the report counts, per table. MyISAM has no transactions:
its rows are visible the moment they are written, so a MyISAM table never has out-of-order keys. The
generated source is all MyISAM, as in the reference clinic; `convert_to_innodb` turns chosen tables into
InnoDB, as an install that ran OpenDental's MyISAM-to-InnoDB conversion tool has them.

The plan (which transaction does what to which row) is a function of the seed and the source's rows, so
`plan_digest` is the same for the same source and seed; timing, and so the keys new rows get, may vary.
The writer's clock is the server's, moved ahead when the source's latest cursor value lies in the future
(a source generated or mutated ahead of the wall clock), so that every stamp it writes sorts after what
is there. The run is bounded: no transaction starts after `seconds`, held ones commit `hold_seconds`
later at most, and setting `stop` ends it early (held transactions then commit at once).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from etl_pipeline.db import SOURCE_ERRORS, connect_source, source_reason
from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.settings import MySQLSettings
from etl_pipeline.synthetic import ddl
from etl_pipeline.synthetic.build import admin_connection
from etl_pipeline.synthetic.schema_data import TABLES
from etl_pipeline.synthetic.simulate import latest_cursor
from etl_pipeline.synthetic.tables_sql import ACTIVE_PROVIDERS, ACTIVE_USERS, STD_CODES
from etl_pipeline.synthetic.timeline import epoch
from etl_pipeline.type_mapping import quote_mysql_ident as q

BUSY_TABLES = ("appointment", "procedurelog", "paysplit", "claimproc", "commlog", "securitylog")
WRITTEN_TABLES = (*BUSY_TABLES, "payment")  # payment follows its paysplits
HOLD_SHARE = 0.1
MAX_RATE = 500.0
MAX_SECONDS = 3600.0
MAX_OPERATIONS = 50_000
MAX_HOLD_SECONDS = 60.0
HOLD_SECONDS = 2.0  # how long a held InnoDB transaction stays open, by default
WRITERS = 4  # writer threads, each with its own connections, by default
MAX_OPEN_PER_WRITER = 8

OpKind = Literal["insert", "update", "delete"]
# unit of work: weight in the mix
UNITS: dict[str, int] = {
    "schedule": 4,
    "confirm": 4,
    "delete_appointment": 1,
    "complete": 3,
    "void_procedure": 1,
    "estimate_edit": 2,
    "payment": 2,
    "split_edit": 1,
    "split_delete": 1,
    "commlog": 4,
    "commlog_edit": 1,
    "commlog_delete": 1,
    "audit": 3,
}


@dataclass(frozen=True)
class Ref:
    """The key inserted by statement `index` of the same transaction (known only when it runs)."""

    index: int


@dataclass(frozen=True)
class Stmt:
    table: str
    kind: OpKind
    sql: str
    args: tuple
    key: int | None = None  # updates and deletes: the row's primary key


@dataclass(frozen=True)
class Txn:
    unit: str
    statements: tuple[Stmt, ...]
    hold: bool
    due: float = 0.0  # seconds after the start of the run


@dataclass
class Plan:
    txns: list[Txn]
    clock_offset: int  # seconds added to the server's clock (0 unless the source is ahead of it)

    @property
    def operations(self) -> int:
        return sum(len(t.statements) for t in self.txns)

    @property
    def digest(self) -> str:
        text = repr(
            [
                (t.unit, t.hold, [(s.table, s.kind, s.sql, s.args, s.key) for s in t.statements])
                for t in self.txns
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LiveReport:
    database: str
    seed: int
    rate: float
    seconds: float
    hold_seconds: float
    writers: int
    plan_digest: str
    clock_offset_seconds: int
    planned_operations: int
    engines: dict[str, str]
    elapsed_seconds: float = 0.0
    operations: int = 0
    transactions: int = 0
    held_transactions: int = 0
    skipped_transactions: int = 0
    stopped_early: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    out_of_order: dict[str, int] = field(default_factory=dict)

    @property
    def out_of_order_tables(self) -> list[str]:
        return [table for table, n in self.out_of_order.items() if n]

    def to_dict(self) -> dict:
        return {**asdict(self), "out_of_order_tables": self.out_of_order_tables}


# ---------------------------------------------------------------- input and set-up


def check_live_args(rate: float, seconds: float, hold_seconds: float, writers: int) -> int:
    """The number of statements to plan; refuses values outside the bounds."""
    for name, value, top in (("--rate", rate, MAX_RATE), ("--seconds", seconds, MAX_SECONDS)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= top:
            raise ConfigError(f"{name} {value!r} must be a number above 0 and at most {top:g}")
    if isinstance(hold_seconds, bool) or not isinstance(hold_seconds, (int, float)):
        raise ConfigError(f"hold_seconds {hold_seconds!r} must be a number")
    if not 0 <= hold_seconds <= MAX_HOLD_SECONDS:
        raise ConfigError(f"hold_seconds {hold_seconds!r} must be from 0 to {MAX_HOLD_SECONDS:g}")
    if isinstance(writers, bool) or not isinstance(writers, int) or not 1 <= writers <= 16:
        raise ConfigError(f"writers {writers!r} must be a whole number from 1 to 16")
    operations = math.ceil(rate * seconds)
    if operations > MAX_OPERATIONS:
        raise ConfigError(
            f"--rate {rate:g} for --seconds {seconds:g} is {operations} statements, above the limit of "
            f"{MAX_OPERATIONS}: lower one of them"
        )
    return operations


def table_engines(cur: Any, database: str, tables: Iterable[str]) -> dict[str, str]:
    cur.execute(
        "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,)
    )
    found = dict(cur.fetchall())
    return {t: found[t] for t in tables if t in found}


def convert_to_innodb(admin_cfg: MySQLSettings, tables: Sequence[str]) -> list[str]:
    """ALTER TABLE ... ENGINE=InnoDB for those of `tables` that are not InnoDB yet; returns them."""
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ConfigError(
            f"--innodb: {', '.join(unknown)} is not one of the 36 OpenDental tables of the source"
        )
    conn = admin_connection(admin_cfg)
    cur = conn.cursor()
    try:
        engines = table_engines(cur, admin_cfg.database, tables)
        missing = [t for t in tables if t not in engines]
        if missing:
            raise EtlError(
                f"source {admin_cfg.display} lacks table {missing[0]}: run `synth --scale S` first"
            )
        converted = [t for t in dict.fromkeys(tables) if engines[t] != "InnoDB"]
        for table in converted:
            cur.execute(f"ALTER TABLE {q(admin_cfg.database)}.{q(table)} ENGINE=InnoDB")
    finally:
        conn.close()
    return converted


# ---------------------------------------------------------------- planning


def _rows(cur: Any, sql: str, args: tuple = ()) -> list[tuple]:
    cur.execute(sql, args)
    return [tuple(row) for row in cur.fetchall()]


def _ids(values: Iterable[Any]) -> str:
    return ", ".join(str(int(v)) for v in values) or "0"


class Planner:
    """Builds the transactions from seeded choices over pools of existing rows (most recent first)."""

    def __init__(self, cur: Any, seed: int, operations: int) -> None:
        self.cur = cur
        self.rng = random.Random(f"live/{int(seed)}")
        self.operations = operations
        weight = sum(UNITS.values())
        self.need = {unit: math.ceil(operations * w / weight * 2) + 10 for unit, w in UNITS.items()}
        self._load_lookups()
        self._load_pools()

    # ----------------------------------------------------------- what exists
    def _load_lookups(self) -> None:
        cur = self.cur
        self.patients = _rows(
            cur, "SELECT PatNum FROM patient WHERE PatStatus = 0 ORDER BY PatNum DESC LIMIT 1000"
        )
        if not self.patients:
            raise EtlError("the source has no active patient (PatStatus 0) to write for")
        insured = _rows(
            cur,
            "SELECT pp.PatNum, i.PlanNum, i.InsSubNum FROM patplan pp JOIN inssub i ON i.InsSubNum = pp.InsSubNum "
            "WHERE pp.Ordinal = 1 AND pp.PatNum >= %s ORDER BY pp.PatPlanNum",
            (self.patients[-1][0],),
        )
        self.insured: dict[int, tuple[int, int]] = {}
        for pat, plan, sub in insured:
            self.insured.setdefault(pat, (plan, sub))
        self.fees = _rows(
            cur, "SELECT CodeNum, Amount FROM fee WHERE FeeNum <= %s ORDER BY FeeNum", (STD_CODES,)
        )
        self.defs = {
            cat: [
                r[0]
                for r in _rows(
                    cur, "SELECT DefNum FROM definition WHERE Category = %s ORDER BY DefNum", (cat,)
                )
            ]
            for cat in (2, 10, 27)
        }
        if len(self.defs[2]) < 2 or not self.defs[10] or not self.defs[27] or not self.fees:
            raise EtlError(
                "the source lacks the definitions/fees a generated source has: run `synth --scale S`"
            )

    def _pool(self, sql: str, size: int, taken: set[int] | None = None) -> list[tuple]:
        """Up to `size` rows of `sql` (newest first, ending in `LIMIT %s`) whose key is not taken, shuffled."""
        taken = taken or set()
        rows = [r for r in _rows(self.cur, sql, (size + len(taken),)) if r[0] not in taken][:size]
        self.rng.shuffle(rows)
        return rows

    def _children(self, sql: str, parents: set[int]) -> dict[int, list[int]]:
        """{parent key: [child keys]} from `sql`, a (parent, child) query with `{}` for the parent keys."""
        found: dict[int, list[int]] = {}
        for parent, child in _rows(self.cur, sql.format(_ids(sorted(parents)))):
            found.setdefault(int(parent), []).append(int(child))
        return found

    def _load_pools(self) -> None:
        need = self.need
        # appointments: deleted (their procedures detached first, as OpenDental does) or confirmed
        planned = (
            "SELECT PlannedAptNum AS n FROM procedurelog WHERE PlannedAptNum <> 0 "
            "UNION SELECT NextAptNum FROM appointment WHERE NextAptNum <> 0"
        )
        self.deletable_appts = self._pool(
            f"SELECT a.AptNum, a.PatNum FROM appointment a LEFT JOIN ({planned}) r ON r.n = a.AptNum "
            "WHERE a.AptStatus IN (1, 3, 5) AND r.n IS NULL ORDER BY a.AptNum DESC LIMIT %s",
            need["delete_appointment"],
        )
        gone = {a for a, _ in self.deletable_appts}
        self.procs_of = self._children(
            "SELECT AptNum, ProcNum FROM procedurelog WHERE AptNum IN ({}) ORDER BY ProcNum", gone
        )
        self.appts = self._pool(
            "SELECT AptNum FROM appointment WHERE AptStatus IN (1, 2) ORDER BY AptNum DESC LIMIT %s",
            need["confirm"],
            gone,
        )
        # treatment-planned procedures: soft-deleted (their estimates hard-deleted) or completed
        detached = {p for procs in self.procs_of.values() for p in procs}
        self.void_procs = self._pool(
            "SELECT p.ProcNum FROM procedurelog p WHERE p.ProcStatus = 1 "
            "AND EXISTS (SELECT 1 FROM claimproc c WHERE c.ProcNum = p.ProcNum AND c.Status = 6) "
            "AND NOT EXISTS (SELECT 1 FROM claimproc c WHERE c.ProcNum = p.ProcNum AND c.Status <> 6) "
            "ORDER BY p.ProcNum DESC LIMIT %s",
            need["void_procedure"],
            detached,
        )
        voided = {p for (p,) in self.void_procs}
        self.estimates_of = self._children(
            "SELECT ProcNum, ClaimProcNum FROM claimproc WHERE Status = 6 AND ProcNum IN ({}) ORDER BY ClaimProcNum",
            voided,
        )
        self.tp_procs = self._pool(
            "SELECT ProcNum, PatNum FROM procedurelog WHERE ProcStatus = 1 ORDER BY ProcNum DESC LIMIT %s",
            need["complete"],
            detached | voided,
        )
        self.estimates = self._pool(
            "SELECT ClaimProcNum FROM claimproc WHERE Status = 6 ORDER BY ClaimProcNum DESC LIMIT %s",
            need["estimate_edit"],
            {c for cps in self.estimates_of.values() for c in cps},
        )
        # paysplits (one per payment) edited or deleted; commlog rows edited or deleted
        self.splits = self._distinct_payments(
            self._pool(
                "SELECT s.SplitNum, s.PayNum, s.SplitAmt, s.PatNum FROM paysplit s JOIN payment y ON y.PayNum = s.PayNum "
                "LEFT JOIN (SELECT DISTINCT FSplitNum AS n FROM paysplit WHERE FSplitNum <> 0) f ON f.n = s.SplitNum "
                "WHERE y.PayType <> 0 AND ABS(s.SplitAmt) >= 0.01 AND f.n IS NULL ORDER BY s.SplitNum DESC LIMIT %s",
                2 * (need["split_edit"] + need["split_delete"]),
            )
        )
        self.commlogs = self._pool(
            "SELECT CommlogNum FROM commlog ORDER BY CommlogNum DESC LIMIT %s",
            need["commlog_edit"] + need["commlog_delete"],
        )

    @staticmethod
    def _distinct_payments(splits: list[tuple]) -> list[tuple]:
        """One split per payment, so no two transactions update the same payment row."""
        seen: set[int] = set()
        kept = []
        for split in splits:
            if split[1] not in seen:
                seen.add(split[1])
                kept.append(split)
        return kept

    # ----------------------------------------------------------- the plan
    def plan(self, rate: float) -> list[Txn]:
        units, weights = list(UNITS), list(UNITS.values())
        txns: list[Txn] = []
        planned = 0
        while planned < self.operations:
            unit = self.rng.choices(units, weights)[0]
            statements = getattr(self, unit)()
            if statements is None or len(statements) > self.operations - planned:
                unit, statements = "audit", self.audit()  # no row left for it, or longer than what is left
            txns.append(Txn(unit, tuple(statements), self.rng.random() < HOLD_SHARE, planned / rate))
            planned += len(statements)
        return txns

    # ----------------------------------------------------------- small helpers
    def user(self) -> int:
        return self.rng.randint(1, ACTIVE_USERS)

    def provider(self) -> int:
        return self.rng.randint(1, ACTIVE_PROVIDERS)

    def patient(self) -> int:
        return int(self.rng.choice(self.patients)[0])

    def log(self, perm: int, text: str, patient: int, fkey: Any = 0) -> Stmt:
        return Stmt(
            "securitylog",
            "insert",
            "INSERT INTO securitylog (PermType, UserNum, LogDateTime, LogText, PatNum, CompName, FKey, LogSource, "
            "DefNum, DefNumError) VALUES (%s, %s, NOW(), %s, %s, %s, %s, 0, 0, 0)",
            (perm, self.user(), text, patient, f"FRONTDESK{self.rng.randint(1, 6)}", fkey),
        )

    # ----------------------------------------------------------- units of work
    def schedule(self) -> list[Stmt]:
        pat, prov, user = self.patient(), self.provider(), self.user()
        days, minutes = self.rng.randint(1, 30), 480 + 10 * self.rng.randint(0, 53)
        code, fee = self.rng.choice(self.fees)
        out = [
            Stmt(
                "appointment",
                "insert",
                "INSERT INTO appointment (PatNum, AptStatus, Pattern, Confirmed, Op, Note, ProvNum, ProvHyg, AptDateTime, "
                "ProcDescript, IsHygiene, DateTimeArrived, DateTimeSeated, DateTimeDismissed, ProcsColored, "
                "SecUserNumEntry, SecDateTEntry) VALUES (%s, 1, '//XXXX//', %s, %s, '', %s, 0, "
                "CURDATE() + INTERVAL %s DAY + INTERVAL %s MINUTE, 'PerEx', 0, '0001-01-01 00:00:00', "
                "'0001-01-01 00:00:00', '0001-01-01 00:00:00', '', %s, NOW())",
                (pat, self.defs[2][0], self.rng.randint(1, 14), prov, days, minutes, user),
            ),
            Stmt(
                "procedurelog",
                "insert",
                "INSERT INTO procedurelog (PatNum, AptNum, ProcDate, ProcFee, ProcStatus, ProvNum, CodeNum, DateTP, "
                "SecUserNumEntry, SecDateEntry, DateEntryC, BillingNote, SnomedBodySite) VALUES "
                "(%s, %s, CURDATE() + INTERVAL %s DAY, %s, 1, %s, %s, CURDATE(), %s, NOW(), CURDATE(), '', '')",
                (pat, Ref(0), days, float(fee), prov, code, user),
            ),
        ]
        if pat in self.insured:
            plan, sub = self.insured[pat]
            out.append(self._estimate(pat, prov, plan, sub, round(float(fee) * 0.8, 2)))
        out.append(self.log(27, "Appointment created", pat, Ref(0)))
        return out

    def _estimate(self, pat: int, prov: int, plan: int, sub: int, est: float) -> Stmt:
        return Stmt(
            "claimproc",
            "insert",
            "INSERT INTO claimproc (ProcNum, ClaimNum, PatNum, ProvNum, InsPayEst, Status, PlanNum, DateCP, "
            "AllowedOverride, Percentage, PercentOverride, CopayAmt, PaidOtherIns, CopayOverride, DedEstOverride, "
            "InsEstTotal, InsEstTotalOverride, PaidOtherInsOverride, WriteOffEst, WriteOffEstOverride, InsSubNum, "
            "ProcDate, DateEntry, SecDateEntry, EstimateNote, ClaimAdjReasonCodes, SecurityHash, Remarks, CodeSent) "
            "VALUES (%s, 0, %s, %s, %s, 6, %s, CURDATE(), -1, 80, -1, -1, -1, -1, -1, %s, -1, -1, -1, -1, %s, "
            "CURDATE(), CURDATE(), CURDATE(), '', '', '', '', '')",
            (Ref(1), pat, prov, est, plan, est, sub),
        )

    def confirm(self) -> list[Stmt] | None:
        if not self.appts:
            return None
        (apt,) = self.appts.pop()
        a, b = self.defs[2][0], self.defs[2][1]
        return [
            Stmt(
                "appointment",
                "update",
                "UPDATE appointment SET Confirmed = IF(Confirmed = %s, %s, %s) WHERE AptNum = %s",
                (a, b, a, apt),
                apt,
            )
        ]

    def delete_appointment(self) -> list[Stmt] | None:
        if not self.deletable_appts:
            return None
        apt, pat = self.deletable_appts.pop()
        detach = [
            Stmt(
                "procedurelog",
                "update",
                "UPDATE procedurelog SET AptNum = 0 WHERE ProcNum = %s",
                (proc,),
                proc,
            )
            for proc in self.procs_of.get(apt, [])
        ]
        return [
            *detach,
            Stmt("appointment", "delete", "DELETE FROM appointment WHERE AptNum = %s", (apt,), apt),
            self.log(26, "Appointment deleted", pat, apt),
        ]

    def complete(self) -> list[Stmt] | None:
        if not self.tp_procs:
            return None
        proc, pat = self.tp_procs.pop()
        return [
            Stmt(
                "procedurelog",
                "update",
                "UPDATE procedurelog SET ProcStatus = 2, ProcDate = CURDATE(), DateComplete = CURDATE() "
                "WHERE ProcNum = %s",
                (proc,),
                proc,
            ),
            self.log(30, "Procedure completed", pat, proc),
        ]

    def void_procedure(self) -> list[Stmt] | None:
        if not self.void_procs:
            return None
        (proc,) = self.void_procs.pop()
        out = [
            Stmt(
                "procedurelog",
                "update",
                "UPDATE procedurelog SET ProcStatus = 6 WHERE ProcNum = %s",
                (proc,),
                proc,
            )
        ]
        out += [
            Stmt("claimproc", "delete", "DELETE FROM claimproc WHERE ClaimProcNum = %s", (cp,), cp)
            for cp in self.estimates_of.get(proc, [])
        ]
        return out

    def estimate_edit(self) -> list[Stmt] | None:
        if not self.estimates:
            return None
        (cp,) = self.estimates.pop()
        delta = self.rng.randint(1, 40)
        return [
            Stmt(
                "claimproc",
                "update",
                "UPDATE claimproc SET InsPayEst = ROUND(InsPayEst + %s, 2), InsEstTotal = ROUND(InsEstTotal + %s, 2) "
                "WHERE ClaimProcNum = %s",
                (delta, delta, cp),
                cp,
            )
        ]

    def payment(self) -> list[Stmt]:
        pat, user = self.patient(), self.user()
        amount = round(self.rng.uniform(10, 200), 2)
        return [
            Stmt(
                "payment",
                "insert",
                "INSERT INTO payment (PayType, PayDate, PayAmt, CheckNum, BankBranch, PayNote, IsSplit, PatNum, "
                "DateEntry, Receipt, SecUserNumEntry, ExternalId) VALUES (%s, CURDATE(), %s, '', '', '', 1, %s, "
                "CURDATE(), '', %s, '')",
                (self.rng.choice(self.defs[10]), amount, pat, user),
            ),
            Stmt(
                "paysplit",
                "insert",
                "INSERT INTO paysplit (SplitAmt, PatNum, ProcDate, PayNum, ProvNum, DatePay, ProcNum, DateEntry, "
                "SecUserNumEntry, SecurityHash) VALUES (%s, %s, CURDATE(), %s, %s, CURDATE(), 0, CURDATE(), %s, '')",
                (amount, pat, Ref(0), self.provider(), user),
            ),
            self.log(43, "Payment created", pat, Ref(0)),
        ]

    def _split_change(self, split: tuple, statement: Stmt, delta: float) -> list[Stmt]:
        _, pay, _, pat = split
        return [
            statement,
            Stmt(
                "payment",
                "update",
                "UPDATE payment SET PayAmt = ROUND(PayAmt + %s, 2) WHERE PayNum = %s",
                (delta, pay),
                int(pay),
            ),
            self.log(44, "Payment edited", int(pat), int(pay)),
        ]

    def split_edit(self) -> list[Stmt] | None:
        if not self.splits:
            return None
        split = self.splits.pop()
        delta = float(self.rng.choice((-1, 1)) * self.rng.randint(1, 20))
        num = int(split[0])
        edit = Stmt(
            "paysplit",
            "update",
            "UPDATE paysplit SET SplitAmt = ROUND(SplitAmt + %s, 2) WHERE SplitNum = %s",
            (delta, num),
            num,
        )
        return self._split_change(split, edit, delta)

    def split_delete(self) -> list[Stmt] | None:
        if not self.splits:
            return None
        split = self.splits.pop()
        num = int(split[0])
        delete = Stmt("paysplit", "delete", "DELETE FROM paysplit WHERE SplitNum = %s", (num,), num)
        return self._split_change(split, delete, -float(split[2]))

    def commlog(self) -> list[Stmt]:
        notes = (
            "Called to confirm",
            "Left voicemail",
            "Patient asked about insurance",
            "Sent post-op instructions",
        )
        return [
            Stmt(
                "commlog",
                "insert",
                "INSERT INTO commlog (PatNum, CommDateTime, CommType, Note, Mode_, SentOrReceived, UserNum, Signature, "
                "SigIsTopaz, DateTimeEnd, CommSource, ProgramNum, DateTEntry, ReferralNum) VALUES "
                "(%s, NOW(), %s, %s, %s, %s, %s, '', 0, '0001-01-01 00:00:00', 0, 0, NOW(), 0)",
                (
                    self.patient(),
                    self.rng.choice(self.defs[27]),
                    self.rng.choice(notes),
                    self.rng.choice((1, 3, 3, 5)),
                    self.rng.choice((1, 2)),
                    self.user(),
                ),
            )
        ]

    def commlog_edit(self) -> list[Stmt] | None:
        if not self.commlogs:
            return None
        (num,) = self.commlogs.pop()
        return [
            Stmt(
                "commlog",
                "update",
                "UPDATE commlog SET Note = CONCAT(COALESCE(Note, ''), %s) WHERE CommlogNum = %s",
                (" Called back.", num),
                num,
            )
        ]

    def commlog_delete(self) -> list[Stmt] | None:
        if not self.commlogs:
            return None
        (num,) = self.commlogs.pop()
        return [Stmt("commlog", "delete", "DELETE FROM commlog WHERE CommlogNum = %s", (num,), num)]

    def audit(self) -> list[Stmt]:
        perm, text = self.rng.choice(((93, "Log on"), (55, "Chart module viewed"), (35, "Patient edited")))
        return [self.log(perm, text, 0 if perm == 93 else self.patient())]


def plan_live(admin_cfg: MySQLSettings, rate: float, seconds: float, seed: int = 1) -> Plan:
    """The transactions `run_live` would play (reads the source, writes nothing)."""
    operations = check_live_args(rate, seconds, 0, 1)
    conn = admin_connection(admin_cfg)
    cur = conn.cursor()
    try:
        return _plan(cur, admin_cfg, rate, operations, seed)
    finally:
        conn.close()


def _plan(cur: Any, admin_cfg: MySQLSettings, rate: float, operations: int, seed: int) -> Plan:
    engines = table_engines(cur, admin_cfg.database, ddl.TABLE_NAMES)
    missing = set(ddl.TABLE_NAMES) - set(engines)
    if missing:
        raise EtlError(
            f"source {admin_cfg.display} lacks {len(missing)} OpenDental tables (e.g. {min(missing)}): "
            "run `synth --scale S` first"
        )
    cur.execute(f"USE {q(admin_cfg.database)}")
    latest = epoch(latest_cursor(cur))
    cur.execute("SELECT UNIX_TIMESTAMP()")
    offset = max(0, latest + 1 - int(cur.fetchone()[0]))
    txns = Planner(cur, seed, operations).plan(rate)
    return Plan(txns, offset)


# ---------------------------------------------------------------- playing it


@dataclass
class Pending:
    """A transaction whose statements ran and that stays open until `deadline`."""

    deadline: float
    conn: Any
    txn: Txn
    keys: list[int]


class Ledger:
    """What has committed. Commits go through one lock, so the order recorded is the order of commits."""

    def __init__(self, engines: dict[str, str]):
        self.lock = threading.Lock()
        self.innodb = frozenset(t for t, engine in engines.items() if engine == "InnoDB")
        self.keys: dict[str, dict[OpKind, set[int]]] = {
            t: {"insert": set(), "update": set(), "delete": set()} for t in WRITTEN_TABLES
        }
        self.max_committed: dict[str, int] = {}
        self.out_of_order: Counter[str] = Counter()
        self.operations = self.transactions = self.held = 0

    def holds(self, txn: Txn) -> bool:
        """Holding open means something only for a transaction that writes an InnoDB table."""
        return txn.hold and any(s.table in self.innodb for s in txn.statements)

    def commit(self, conn: Any, txn: Txn, keys: list[int], held: bool) -> None:
        with self.lock:
            conn.commit()
            self.transactions += 1
            self.operations += len(txn.statements)
            self.held += held
            inserted: dict[str, list[int]] = {}
            for stmt, key in zip(txn.statements, keys, strict=True):
                self.keys[stmt.table][stmt.kind].add(key)
                if stmt.kind == "insert" and stmt.table in self.innodb:
                    inserted.setdefault(stmt.table, []).append(key)
            for table, new in inserted.items():
                top = self.max_committed.get(table, 0)
                self.out_of_order[table] += sum(1 for key in new if key < top)
                self.max_committed[table] = max(top, *new)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            table: {
                "inserted": len(kinds["insert"]),
                "updated": len(kinds["update"] - kinds["delete"]),
                "deleted": len(kinds["delete"]),
            }
            for table, kinds in self.keys.items()
        }


class Writer(threading.Thread):
    """Plays its share of the transactions on time; parks held ones on their own connection."""

    def __init__(self, index: int, cfg: MySQLSettings, txns: list[Txn], ledger: Ledger, run: LiveRun):
        super().__init__(name=f"live-writer-{index}", daemon=True)
        self.cfg, self.txns, self.ledger, self.run_ = cfg, txns, ledger, run
        self.idle: list[Any] = []
        self.opened: list[Any] = []
        self.pending: list[Pending] = []
        self.done = 0

    def connect(self) -> None:
        conn: Any = connect_source(self.cfg)
        conn.autocommit(False)
        self.opened.append(conn)
        self.idle.append(conn)

    def run(self) -> None:
        try:
            for txn in self.txns:
                if not self._wait_until(self.run_.start + txn.due):
                    break
                self._play(txn)
                self.done += 1
            self._drain()
        except BaseException as exc:  # run_live raises it once every writer has stopped
            self.run_.errors.append(exc)
            self.run_.stop.set()
        finally:
            for conn in self.opened:  # an open transaction left here (after an error) rolls back
                conn.close()

    def _play(self, txn: Txn) -> None:
        if not self.idle and len(self.pending) >= MAX_OPEN_PER_WRITER:
            self._commit_first()
        if not self.idle:
            self.connect()
        conn = self.idle.pop()
        cur = conn.cursor()
        keys: list[int] = []
        try:
            if self.run_.clock_offset:
                cur.execute("SET timestamp = UNIX_TIMESTAMP(SYSDATE(6)) + %s", (self.run_.clock_offset,))
            for stmt in txn.statements:
                cur.execute(stmt.sql, tuple(keys[a.index] if isinstance(a, Ref) else a for a in stmt.args))
                keys.append(int(cur.lastrowid) if stmt.kind == "insert" else int(stmt.key or 0))
        except SOURCE_ERRORS as exc:
            conn.rollback()
            raise EtlError(
                f"live writer: {txn.unit} failed on table {txn.statements[len(keys)].table}: {source_reason(exc)}"
            ) from None
        finally:
            cur.close()
        if self.ledger.holds(txn) and self.run_.hold_seconds > 0:
            self.pending.append(Pending(time.monotonic() + self.run_.hold_seconds, conn, txn, keys))
        else:
            self.ledger.commit(conn, txn, keys, held=False)
            self.idle.append(conn)

    def _commit_due(self, force: bool = False) -> None:
        now = time.monotonic()
        for held in [p for p in self.pending if force or p.deadline <= now]:
            self.ledger.commit(held.conn, held.txn, held.keys, held=True)
            self.pending.remove(held)
            self.idle.append(held.conn)

    def _commit_first(self) -> None:
        first = min(self.pending, key=lambda p: p.deadline)
        self.run_.stop.wait(max(0.0, first.deadline - time.monotonic()))
        self._commit_due(force=self.run_.stop.is_set())
        if first in self.pending:  # woken early: commit it anyway, a connection is needed now
            self.pending.remove(first)
            self.ledger.commit(first.conn, first.txn, first.keys, held=True)
            self.idle.append(first.conn)

    def _wait_until(self, due: float) -> bool:
        """Wait (committing held transactions as their time comes) until `due`; False: stop starting."""
        while True:
            stopping = self.run_.stop.is_set()
            self._commit_due(force=stopping)
            now = time.monotonic()
            if stopping or now >= self.run_.end:
                return False
            if now >= due:
                return True
            wake = min([due, *(p.deadline for p in self.pending)])
            self.run_.stop.wait(max(0.0, wake - now))

    def _drain(self) -> None:
        while self.pending:
            if self.run_.stop.is_set():
                self._commit_due(force=True)
                return
            first = min(p.deadline for p in self.pending)
            self.run_.stop.wait(max(0.0, first - time.monotonic()))
            self._commit_due()


@dataclass
class LiveRun:
    """What the writers share besides the ledger."""

    stop: threading.Event
    seconds: float
    hold_seconds: float
    clock_offset: int
    start: float = 0.0
    end: float = 0.0
    writers: list[Writer] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def run_live(
    admin_cfg: MySQLSettings,
    rate: float,
    seconds: float,
    seed: int = 1,
    *,
    hold_seconds: float = HOLD_SECONDS,
    writers: int = WRITERS,
    stop: threading.Event | None = None,
) -> LiveReport:
    """Write to the source at about `rate` statements a second for `seconds` (see the module docstring)."""
    operations = check_live_args(rate, seconds, hold_seconds, writers)
    conn = admin_connection(admin_cfg)
    cur = conn.cursor()
    try:
        plan = _plan(cur, admin_cfg, rate, operations, seed)
        engines = table_engines(cur, admin_cfg.database, WRITTEN_TABLES)
    finally:
        conn.close()
    run = LiveRun(stop or threading.Event(), float(seconds), float(hold_seconds), plan.clock_offset)
    ledger = Ledger(engines)
    run.writers = [Writer(i, admin_cfg, plan.txns[i::writers], ledger, run) for i in range(writers)]
    _play(run)
    return LiveReport(
        database=admin_cfg.database,
        seed=int(seed),
        rate=float(rate),
        seconds=float(seconds),
        hold_seconds=float(hold_seconds),
        writers=writers,
        plan_digest=plan.digest,
        clock_offset_seconds=plan.clock_offset,
        planned_operations=plan.operations,
        engines=engines,
        elapsed_seconds=round(time.monotonic() - run.start, 3),
        operations=ledger.operations,
        transactions=ledger.transactions,
        held_transactions=ledger.held,
        skipped_transactions=len(plan.txns) - sum(w.done for w in run.writers),
        stopped_early=run.stop.is_set(),
        counts=ledger.counts(),
        out_of_order={t: ledger.out_of_order.get(t, 0) for t in WRITTEN_TABLES},
    )


def _play(run: LiveRun) -> None:
    """Start the writers together, wait for them, raise the first error one of them met."""
    try:
        for writer in run.writers:  # connect before the clock starts, so the first statements are on time
            writer.connect()
    except BaseException:
        for writer in run.writers:
            for conn in writer.opened:
                conn.close()
        raise
    run.start = time.monotonic()
    run.end = run.start + run.seconds
    try:
        for writer in run.writers:
            writer.start()
        for writer in run.writers:
            writer.join()
    except BaseException:  # Ctrl-C: let the writers commit what they hold and stop
        run.stop.set()
        for writer in run.writers:
            writer.join()
        raise
    if run.errors:
        error = run.errors[0]
        raise error if isinstance(error, EtlError) else EtlError(f"live writer failed: {error!r}")


@dataclass
class BackgroundWriting:
    """What `writing_in_background` wrote, filled in when its block ends."""

    report: LiveReport | None = None
    error: Exception | None = None


@contextmanager
def writing_in_background(
    admin_cfg: MySQLSettings, rate: float, seed: int = 1, *, max_seconds: float = 1800.0
) -> Iterator[BackgroundWriting]:
    """`run_live` in a thread for as long as the block runs (the front desk working beside a night), for
    `max_seconds` at most. A writer's error is raised after the block, so the block's own error wins."""
    check_live_args(rate, max_seconds, HOLD_SECONDS, WRITERS)  # before the block, not after it
    stop = threading.Event()
    outcome = BackgroundWriting()

    def write() -> None:
        try:
            outcome.report = run_live(admin_cfg, rate, max_seconds, seed, stop=stop)
        except Exception as exc:  # kept for after the block
            outcome.error = exc

    writer = threading.Thread(target=write, name="synth-live", daemon=True)
    writer.start()
    try:
        yield outcome
    finally:
        stop.set()
        writer.join()
    if outcome.error is not None:
        raise EtlError(f"the live writer failed: {outcome.error}") from outcome.error
