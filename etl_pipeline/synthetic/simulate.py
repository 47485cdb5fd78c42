"""Simulate N days of clinic work on an existing synthetic (OpenDental-shaped) source.

Clock rule: day 1 starts at 08:00 on the calendar day after the latest cursor value in the source
(every timestamp column - DateTStamp/SecDateTEdit - and the insert datetimes LogDateTime, HistDateTStamp,
DateTEntry, SecDateTEntry, procedurelog.SecDateEntry); each further day is the next calendar day. The
session's `timestamp` is pinned to the simulated time before every step, and cursor columns are set
explicitly from it, so everything written sorts after what was there and the wall clock never matters.
The same source and seed give the same changes.

Each day: new patients, new appointments with treatment-planned procedures (+ insurance estimates and
history rows), today's appointments completed or broken (procedures completed, estimates hard-deleted,
claims + claimprocs created, patient payments + paysplits), claims sent and received (claimpayment,
claimprocs and claim totals), patient/recall/fee edits, a same-second confirmation burst, hard deletes
(appointments, paysplits, patplans), soft deletes (procedurelog ProcStatus=6, patient PatStatus=4),
commlog and securitylog bursts. One aging run at the end of the call rewrites the family balances; only
guarantor rows whose balances change get a new DateTStamp.

Counts returned (per table, net against the state before the call, counted by the server):
  inserted = rows whose PK did not exist before; deleted = rows that existed and are gone;
  updated  = surviving old rows whose cursor column now lies in the simulated period.
Rows inserted and deleted within the same call appear in neither. Integrity rules are kept: FKs point
at existing rows (histappointment keeps numbers of deleted appointments, as OpenDental does), paysplits
sum to their payment, claimprocs to their claim and claimpayment.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta

from etl_pipeline.errors import ConfigError, EtlError
from etl_pipeline.settings import MySQLSettings
from etl_pipeline.synthetic import ddl
from etl_pipeline.synthetic.aging import aging_sql
from etl_pipeline.synthetic.build import admin_connection
from etl_pipeline.synthetic.schema_data import TABLES
from etl_pipeline.synthetic.sqlrand import Rand
from etl_pipeline.synthetic.tables_sql import ACTIVE_PROVIDERS, ACTIVE_USERS, N_CATEGORIES, STD_CODES
from etl_pipeline.synthetic.timeline import epoch, mutation_start, sql_dt
from etl_pipeline.type_mapping import quote_mysql_ident as q

MAX_DAYS = 366
INSERT_DATETIMES = (
    ("securitylog", "LogDateTime"),
    ("histappointment", "HistDateTStamp"),
    ("commlog", "DateTEntry"),
    ("appointment", "SecDateTEntry"),
    ("patplan", "SecDateTEntry"),
    ("payplancharge", "SecDateTEntry"),
    ("procedurelog", "SecDateEntry"),
)


def cursor_column(table: str) -> str | None:
    for col in ddl.columns(table):
        if col.base_type == "timestamp":
            return col.name
    return None


def latest_cursor(cur) -> datetime:
    parts = [(t, cursor_column(t)) for t in ddl.TABLE_NAMES if cursor_column(t)] + list(INSERT_DATETIMES)
    latest = datetime(1971, 1, 1)
    for table, column in parts:
        cur.execute(f"SELECT MAX({q(column)}) FROM {q(table)}")
        value = cur.fetchone()[0]
        if isinstance(value, datetime) and value > latest:
            latest = value
    return latest


def mutate(
    admin_cfg: MySQLSettings, days: int, seed: int = 7, *, quiet: bool = False, out=None
) -> dict[str, dict[str, int]]:
    """Simulate `days` days of work on the source `admin_cfg.database`; returns per-table net counts."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"--days {days!r} must be a whole number from 1 to {MAX_DAYS}")
    out = out or sys.stdout
    conn = admin_connection(admin_cfg)
    cur = conn.cursor()
    try:
        cur.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (admin_cfg.database,)
        )
        missing = set(ddl.TABLE_NAMES) - {row[0] for row in cur.fetchall()}
        if missing:
            raise EtlError(
                f"source {admin_cfg.display} lacks {len(missing)} OpenDental tables "
                f"(e.g. {min(missing)}): run `synth --scale S` first"
            )
        cur.execute(f"USE {q(admin_cfg.database)}")
        start = mutation_start(latest_cursor(cur))
        before = _snapshot(cur)
        sim = Simulation(cur, int(seed), before)
        for day in range(days):
            t0 = time.monotonic()
            sim.run_day(day, start + timedelta(days=day))
            if not quiet:
                print(
                    f"  day {day + 1}: {start.date() + timedelta(days=day)} simulated in "
                    f"{time.monotonic() - t0:.1f}s",
                    file=out,
                    flush=True,
                )
        last_day = (start + timedelta(days=days - 1)).date()
        cur.execute(
            f"SET timestamp = {epoch(datetime.combine(last_day, datetime.min.time()) + timedelta(hours=23))}"
        )
        cur.execute(aging_sql(last_day))
        counts = _net_counts(cur, before, start)
    finally:
        conn.close()
    if not quiet:
        _print_counts(counts, start, days, out)
    return counts


def _snapshot(cur) -> dict[str, tuple[int, int]]:
    snap = {}
    for table in ddl.TABLE_NAMES:
        pk = q(TABLES[table]["pk"])
        cur.execute(f"SELECT COUNT(*), COALESCE(MAX({pk}), 0) FROM {q(table)}")
        snap[table] = tuple(int(v) for v in cur.fetchone())
    return snap


def _net_counts(cur, before, start: datetime) -> dict[str, dict[str, int]]:
    counts = {}
    for table in ddl.TABLE_NAMES:
        old_rows, old_max = before[table]
        pk = q(TABLES[table]["pk"])
        column = cursor_column(table)
        touched = f"SUM({q(column)} >= {sql_dt(start)} AND {pk} <= {old_max})" if column else "0"
        cur.execute(f"SELECT SUM({pk} > {old_max}), SUM({pk} <= {old_max}), {touched} FROM {q(table)}")
        new, kept, updated = (int(v or 0) for v in cur.fetchone())
        counts[table] = {"inserted": new, "updated": updated, "deleted": old_rows - kept}
    return counts


def _print_counts(counts, start: datetime, days: int, out) -> None:
    print(f"simulated {days} day(s) from {start:%Y-%m-%d %H:%M}", file=out)
    print(f"  {'table':<16} {'inserted':>9} {'updated':>9} {'deleted':>9}", file=out)
    for table, c in counts.items():
        if any(c.values()):
            print(f"  {table:<16} {c['inserted']:>9,} {c['updated']:>9,} {c['deleted']:>9,}", file=out)


class Simulation:
    """One simulated day at a time; all statements set-based, keyed by (seed, day, row)."""

    def __init__(self, cur, seed: int, before):
        self.cur = cur
        self.seed = seed
        patients = before["patient"][0]
        self.k_patients = max(1, round(patients * 0.0004))
        self.k_appts = max(2, round(patients * 0.001))
        self.k_walkins = max(1, self.k_appts // 4)  # same-day appointments, seen before noon
        self.k_comm = max(5, round(patients * 0.003))
        self.k_sec = max(20, round(patients * 0.015))
        self.k_edit = max(1, round(patients * 0.0005))
        self.k_small = max(1, round(patients * 0.0001))

    # -------------------------------------------------------------- helpers
    def at(self, when: datetime) -> None:
        self.cur.execute(f"SET timestamp = {epoch(when)}")

    def run(self, sql: str, args=None) -> int:
        self.cur.execute(sql, args)
        return self.cur.rowcount

    def scalar(self, sql: str):
        self.cur.execute(sql)
        return self.cur.fetchone()[0]

    def next_id(self, table: str) -> int:
        return int(self.scalar(f"SELECT COALESCE(MAX({q(TABLES[table]['pk'])}), 0) + 1 FROM {q(table)}"))

    def defnum(self, category: int, salt: str, key: str = "s.seq") -> str:
        return f"({category} + 1 + {N_CATEGORIES} * FLOOR({self.r.u(salt, key)} * 11))"

    # -------------------------------------------------------------- the day
    def run_day(self, day: int, morning: datetime) -> None:
        self.r = Rand(self.seed, tag=f"m{day}:")
        self.day = morning.date()
        self.D = f"'{self.day.isoformat()}'"
        steps = (
            (8, 0, self.reminder_burst),
            (8, 5, self.new_patients),
            (8, 30, self.new_appointments),
            (12, 0, self.todays_appointments),
            (13, 0, self.new_claims),
            (14, 0, self.new_payments),
            (15, 0, self.claims_sent_and_received),
            (16, 0, self.edits),
            (16, 30, self.confirmation_burst),
            (17, 0, self.hard_deletes),
            (17, 30, self.soft_deletes),
            (18, 0, self.security_log),
        )
        midnight = datetime.combine(self.day, datetime.min.time())
        for hour, minute, step in steps:
            self.at(midnight + timedelta(hours=hour, minutes=minute))
            step()

    def reminder_burst(self) -> None:
        """Automated reminders: all written in the same second."""
        r = self.r
        n_pat = self.scalar("SELECT MAX(PatNum) FROM patient")
        self.run(f"""INSERT INTO commlog (PatNum, CommDateTime, CommType, Note, Mode_, SentOrReceived, UserNum,
                Signature, DateTStamp, CommSource, DateTEntry)
            SELECT p.PatNum, NOW(), {self.defnum(27, "ct")}, 'Appointment reminder sent\r\nvia text 📱', 5, 1, 0,
                '', NOW(), 1, NOW()
            FROM seq_1_to_{self.k_comm} s JOIN patient p ON p.PatNum = 1 + FLOOR({r.u("cp")} * {n_pat})""")

    def new_patients(self) -> None:
        r = self.r
        base = self.next_id("patient")
        n_pat = base - 1
        self.run(f"""INSERT INTO patient (PatNum, LName, FName, MiddleI, PatStatus, Gender, Birthdate, Address, City,
                State, Zip, HmPhone, Guarantor, PriProv, BillingType, DateFirstVisit, SchoolName, DateTStamp,
                SecUserNumEntry, SecDateEntry, BillingCycleDay, DateTimeDeceased, Email)
            SELECT {base} + s.seq - 1, CONCAT('Newpat', s.seq), IF(s.seq % 2 = 0, 'Zoë', 'Renée'),
                IF(s.seq % 3 = 0, NULL, ''), 0, s.seq % 2, '1990-01-01' + INTERVAL FLOOR({r.u("bd")} * 9000) DAY,
                CONCAT(s.seq * 17, ' Main St'), 'Salem', 'OR', '97301', '',
                IF({r.chance(0.3, "fam")} AND g.PatNum IS NOT NULL, g.PatNum, {base} + s.seq - 1),
                1 + FLOOR({r.u("pv")} * {ACTIVE_PROVIDERS}), {self.defnum(4, "bt")}, {self.D}, '',
                NOW() + INTERVAL s.seq * 7 SECOND, 1 + FLOOR({r.u("us")} * {ACTIVE_USERS}), {self.D}, 1,
                '0001-01-01 00:00:00', ''
            FROM seq_1_to_{self.k_patients} s
            LEFT JOIN patient g ON g.PatNum = 1 + FLOOR({r.u("g")} * {n_pat}) AND g.Guarantor = g.PatNum
                AND g.PatStatus <> 4""")

    def new_appointments(self) -> None:
        """Appointments (a few same-day, the rest 1-30 days ahead) with 1-3 planned procedures each,
        their history rows and, for insured patients, claimproc estimates."""
        r = self.r
        apt = self.next_id("appointment")
        proc = self.next_id("procedurelog")
        n_pat = self.scalar("SELECT MAX(PatNum) FROM patient")
        self.run(f"""INSERT INTO appointment (AptNum, PatNum, AptStatus, Pattern, Confirmed, Op, Note, ProvNum, ProvHyg,
                AptDateTime, ProcDescript, IsHygiene, DateTStamp, DateTimeArrived, DateTimeSeated, DateTimeDismissed,
                ProcsColored, SecUserNumEntry, SecDateTEntry)
            SELECT {apt} + s.seq - 1, p.PatNum, 1, '//XXXX//', {self.defnum(2, "cf")}, 1 + FLOOR({r.u("op")} * 14),
                IF(s.seq % 4 = 0, 'Pt wants\tearly slot\r\nIf possible', ''),
                1 + FLOOR({r.u("pv")} * {ACTIVE_PROVIDERS}), 0,
                IF(s.seq <= {self.k_walkins}, {self.D} + INTERVAL 540 + 10 * FLOOR({r.u("tw")} * 18) MINUTE,
                   {self.D} + INTERVAL 1 + FLOOR({r.u("dd")} * 30) DAY + INTERVAL 480 + 10 * FLOOR({r.u("tm")} * 54) MINUTE),
                'PerEx, Pro', 0, NOW() + INTERVAL s.seq * 11 SECOND, '0001-01-01 00:00:00', '0001-01-01 00:00:00',
                '0001-01-01 00:00:00', '', 1 + FLOOR({r.u("us")} * {ACTIVE_USERS}), NOW() + INTERVAL s.seq * 11 SECOND
            FROM seq_1_to_{self.k_appts} s JOIN patient p ON p.PatNum = 1 + FLOOR({r.u("pt")} * {n_pat})""")
        self.run(f"""INSERT INTO procedurelog (ProcNum, PatNum, AptNum, ProcDate, ProcFee, ProcStatus, ProvNum, CodeNum,
                DateTP, DateTStamp, SecUserNumEntry, SecDateEntry, DateEntryC, BillingNote, SnomedBodySite)
            SELECT {proc} - 1 + ROW_NUMBER() OVER (ORDER BY a.AptNum, k.seq), a.PatNum, a.AptNum, DATE(a.AptDateTime),
                f.Amount, 1, a.ProvNum, f.CodeNum, {self.D}, a.DateTStamp, a.SecUserNumEntry, a.SecDateTEntry,
                {self.D}, '', ''
            FROM appointment a JOIN seq_1_to_3 k ON k.seq <= 1 + FLOOR({self.r.u("np", "a.AptNum")} * 3)
            JOIN fee f ON f.FeeNum = 1 + FLOOR({self.r.u("cd", "CONCAT(a.AptNum, '-', k.seq)")} * {STD_CODES})
            WHERE a.AptNum >= {apt}""")
        self.history(f"a.AptNum >= {apt}", action=0)
        self.run(f"""INSERT INTO claimproc (ProcNum, ClaimNum, PatNum, ProvNum, InsPayEst, Status, PlanNum, DateCP,
                AllowedOverride, Percentage, PercentOverride, CopayAmt, PaidOtherIns, CopayOverride, DedEstOverride,
                InsEstTotal, InsEstTotalOverride, PaidOtherInsOverride, WriteOffEst, WriteOffEstOverride,
                InsSubNum, ProcDate, DateEntry, SecDateEntry, SecDateTEdit, EstimateNote, ClaimAdjReasonCodes,
                SecurityHash, Remarks, CodeSent)
            SELECT p.ProcNum, 0, p.PatNum, p.ProvNum, ROUND(p.ProcFee * 0.8, 2), 6, i.PlanNum, p.ProcDate,
                -1, 80, -1, -1, -1, -1, -1, ROUND(p.ProcFee * 0.8, 2), -1, -1, -1, -1,
                i.InsSubNum, p.ProcDate, {self.D}, {self.D}, p.DateTStamp, '', '', '', '', ''
            FROM procedurelog p JOIN patplan pp ON pp.PatNum = p.PatNum AND pp.Ordinal = 1
            JOIN inssub i ON i.InsSubNum = pp.InsSubNum
            WHERE p.ProcNum >= {proc} ORDER BY p.ProcNum, pp.PatPlanNum""")

    def history(self, where: str, action: int) -> None:
        """histappointment rows copying the appointments matched by `where` (alias a), written now."""
        self.run(f"""INSERT INTO histappointment (HistUserNum, HistDateTStamp, HistApptAction, ApptSource, AptNum, PatNum,
                AptStatus, Pattern, Confirmed, TimeLocked, Op, Note, ProvNum, ProvHyg, AptDateTime, NextAptNum,
                UnschedStatus, IsNewPatient, ProcDescript, ClinicNum, IsHygiene, DateTStamp, DateTimeArrived,
                DateTimeSeated, DateTimeDismissed, InsPlan1, InsPlan2, DateTimeAskedToArrive, ProcsColored,
                ColorOverride, SecUserNumEntry, SecDateTEntry)
            SELECT a.SecUserNumEntry, GREATEST(NOW(), a.DateTStamp), {action}, 0, a.AptNum, a.PatNum, a.AptStatus,
                a.Pattern, a.Confirmed, a.TimeLocked, a.Op, COALESCE(a.Note, ''), a.ProvNum, a.ProvHyg,
                a.AptDateTime, a.NextAptNum, a.UnschedStatus, a.IsNewPatient, COALESCE(a.ProcDescript, ''), 0,
                a.IsHygiene, GREATEST(NOW(), a.DateTStamp),
                IF(a.DateTimeArrived = '0000-00-00 00:00:00', '0001-01-01 00:00:00', a.DateTimeArrived),
                a.DateTimeSeated, a.DateTimeDismissed, a.InsPlan1, a.InsPlan2, a.DateTimeAskedToArrive,
                a.ProcsColored, a.ColorOverride, a.SecUserNumEntry, a.SecDateTEntry
            FROM appointment a WHERE {where} ORDER BY a.AptNum""")

    def todays_appointments(self) -> None:
        """Scheduled appointments of today: 85% completed (procedures too, estimates dropped), the rest broken."""
        r = self.r
        self.run("DROP TEMPORARY TABLE IF EXISTS _today")
        self.run(f"""CREATE TEMPORARY TABLE _today (PRIMARY KEY (AptNum)) AS
            SELECT AptNum, {r.u("done", "AptNum")} < 0.85 AS done, FLOOR({r.u("sec", "AptNum")} * 3000) AS sec
            FROM appointment WHERE AptStatus = 1 AND AptDateTime >= {self.D} AND AptDateTime < {self.D} + INTERVAL 1 DAY""")
        self.run("""UPDATE appointment a JOIN _today t ON t.AptNum = a.AptNum SET
                a.AptStatus = IF(t.done, 2, 5),
                a.DateTimeArrived = IF(t.done, a.AptDateTime - INTERVAL 4 MINUTE, a.DateTimeArrived),
                a.DateTimeSeated = IF(t.done, a.AptDateTime + INTERVAL 3 MINUTE, a.DateTimeSeated),
                a.DateTimeDismissed = IF(t.done, a.AptDateTime + INTERVAL 50 MINUTE, a.DateTimeDismissed),
                a.DateTStamp = NOW() + INTERVAL t.sec SECOND""")
        self.run(f"""UPDATE procedurelog p JOIN _today t ON t.AptNum = p.AptNum SET p.ProcStatus = 2,
                p.ProcDate = {self.D}, p.DateComplete = {self.D}, p.DateTStamp = NOW() + INTERVAL t.sec SECOND
            WHERE t.done AND p.ProcStatus = 1""")
        self.run("""DELETE cp FROM claimproc cp JOIN procedurelog p ON p.ProcNum = cp.ProcNum
            JOIN _today t ON t.AptNum = p.AptNum WHERE t.done AND cp.Status = 6 AND p.ProcStatus = 2""")
        self.history("a.AptNum IN (SELECT AptNum FROM _today)", action=1)

    def new_claims(self) -> None:
        """One unsent claim per completed appointment of an insured patient, a claimproc per procedure."""
        base = self.next_id("claim")
        self.run("DROP TEMPORARY TABLE IF EXISTS _claims")
        self.run(f"""CREATE TEMPORARY TABLE _claims (PRIMARY KEY (AptNum)) AS
            SELECT a.AptNum, {base} - 1 + ROW_NUMBER() OVER (ORDER BY a.AptNum) AS ClaimNum, a.PatNum, a.ProvNum,
                i.PlanNum, i.InsSubNum
            FROM appointment a JOIN _today t ON t.AptNum = a.AptNum AND t.done
            JOIN patplan pp ON pp.PatNum = a.PatNum AND pp.Ordinal = 1
            JOIN inssub i ON i.InsSubNum = pp.InsSubNum
            WHERE pp.PatPlanNum = (SELECT MIN(PatPlanNum) FROM patplan x WHERE x.PatNum = a.PatNum AND x.Ordinal = 1)""")
        self.run(f"""INSERT INTO claim (ClaimNum, PatNum, DateService, ClaimStatus, PlanNum, ProvTreat, ProvBill, ClaimType,
                InsSubNum, SecUserNumEntry, SecDateEntry, SecDateTEdit, ClaimNote, CanadianMaterialsForwarded, Narrative)
            SELECT c.ClaimNum, c.PatNum, {self.D}, 'U', c.PlanNum, c.ProvNum, c.ProvNum, 'P', c.InsSubNum, 1,
                {self.D}, NOW() + INTERVAL (c.ClaimNum - {base}) * 5 SECOND, NULL, '', ''
            FROM _claims c ORDER BY c.ClaimNum""")
        self.run(f"""INSERT INTO claimproc (ProcNum, ClaimNum, PatNum, ProvNum, FeeBilled, InsPayEst, Status, PlanNum, DateCP,
                AllowedOverride, Percentage, PercentOverride, CopayAmt, PaidOtherIns, CopayOverride, DedEstOverride,
                InsEstTotal, InsEstTotalOverride, PaidOtherInsOverride, WriteOffEst, WriteOffEstOverride, InsSubNum,
                ProcDate, DateEntry, SecDateEntry, SecDateTEdit, EstimateNote, ClaimAdjReasonCodes, SecurityHash,
                Remarks, CodeSent)
            SELECT p.ProcNum, c.ClaimNum, p.PatNum, p.ProvNum, p.ProcFee, ROUND(p.ProcFee * 0.8, 2), 0, c.PlanNum,
                {self.D}, -1, 80, -1, -1, -1, -1, -1, ROUND(p.ProcFee * 0.8, 2), -1, -1, -1, -1, c.InsSubNum,
                p.ProcDate, {self.D}, {self.D}, NOW() + INTERVAL (c.ClaimNum - {base}) * 5 SECOND, '', '', '', '', ''
            FROM _claims c JOIN procedurelog p ON p.AptNum = c.AptNum WHERE p.ProcStatus = 2 ORDER BY p.ProcNum""")
        self.run(f"""UPDATE claim c JOIN (SELECT ClaimNum, SUM(FeeBilled) fee, SUM(InsPayEst) est FROM claimproc
                WHERE ClaimNum >= {base} GROUP BY ClaimNum) x ON x.ClaimNum = c.ClaimNum
            SET c.ClaimFee = x.fee, c.InsPayEst = x.est, c.SecDateTEdit = c.SecDateTEdit""")

    def new_payments(self) -> None:
        """Copays for 80% of today's completed appointments: a payment and one split per procedure."""
        base = self.next_id("payment")
        r = self.r
        self.run("DROP TEMPORARY TABLE IF EXISTS _pay")
        self.run(f"""CREATE TEMPORARY TABLE _pay (PRIMARY KEY (AptNum)) AS
            SELECT a.AptNum, a.PatNum, {base} - 1 + ROW_NUMBER() OVER (ORDER BY a.AptNum) AS PayNum
            FROM appointment a JOIN _today t ON t.AptNum = a.AptNum AND t.done
            WHERE {r.u("pay", "a.AptNum")} < 0.8""")
        self.run(f"""INSERT INTO payment (PayNum, PayType, PayDate, PayAmt, CheckNum, BankBranch, PayNote, IsSplit, PatNum,
                DateEntry, Receipt, SecUserNumEntry, SecDateTEdit, ExternalId)
            SELECT y.PayNum, {self.defnum(10, "pt", "y.PayNum")}, {self.D},
                COALESCE((SELECT ROUND(SUM(ROUND(p.ProcFee * 0.3, 2)), 2) FROM procedurelog p
                          WHERE p.AptNum = y.AptNum AND p.ProcStatus = 2), 0),
                '', '', IF(y.PayNum % 3 = 0, 'Copay – paid at front desk', ''), 1, y.PatNum, {self.D}, '', 1,
                NOW() + INTERVAL (y.PayNum - {base}) * 13 SECOND, ''
            FROM _pay y ORDER BY y.PayNum""")
        self.run(f"""INSERT INTO paysplit (SplitAmt, PatNum, ProcDate, PayNum, ProvNum, DatePay, ProcNum, DateEntry,
                SecUserNumEntry, SecDateTEdit, SecurityHash)
            SELECT ROUND(p.ProcFee * 0.3, 2), y.PatNum, p.ProcDate, y.PayNum, p.ProvNum, {self.D}, p.ProcNum,
                {self.D}, 1, NOW() + INTERVAL (y.PayNum - {base}) * 13 SECOND, ''
            FROM _pay y JOIN procedurelog p ON p.AptNum = y.AptNum WHERE p.ProcStatus = 2 ORDER BY p.ProcNum""")

    def claims_sent_and_received(self) -> None:
        """Yesterday's unsent claims go out; ~30% of claims sent 2+ weeks ago are paid by one check."""
        r = self.r
        self.run(f"""UPDATE claim SET ClaimStatus = 'S', DateSent = {self.D},
                SecDateTEdit = NOW() + INTERVAL ClaimNum % 600 SECOND
            WHERE ClaimStatus = 'U' AND DateService < {self.D}""")
        self.run("DROP TEMPORARY TABLE IF EXISTS _recv")
        self.run(f"""CREATE TEMPORARY TABLE _recv (PRIMARY KEY (ClaimNum)) AS
            SELECT ClaimNum FROM claim WHERE ClaimStatus IN ('S', 'W') AND DateSent > '0001-01-01'
                AND DateSent <= {self.D} - INTERVAL 14 DAY AND {r.u("rc", "ClaimNum")} < 0.3""")
        if not self.scalar("SELECT COUNT(*) FROM _recv"):
            return
        check = self.next_id("claimpayment")
        self.run(f"""UPDATE claimproc cp JOIN _recv x ON x.ClaimNum = cp.ClaimNum SET cp.Status = 1,
                cp.InsPayAmt = cp.InsPayEst, cp.ClaimPaymentNum = {check}, cp.DateCP = {self.D},
                cp.DateInsFinalized = {self.D}, cp.SecDateTEdit = NOW()
            WHERE cp.Status = 0""")
        self.run(f"""INSERT INTO claimpayment (ClaimPaymentNum, CheckDate, CheckAmt, CheckNum, BankBranch, Note,
                CarrierName, DateIssued, PayType, SecUserNumEntry, SecDateEntry, SecDateTEdit)
            SELECT {check}, {self.D}, COALESCE(SUM(InsPayAmt), 0), CONCAT('EFT', {check}), '', '', 'Delta Dental',
                {self.D}, {self.defnum(32, "cpt", str(check))}, 1, {self.D}, NOW()
            FROM claimproc WHERE ClaimPaymentNum = {check}""")
        self.run(f"""UPDATE claim c JOIN (SELECT ClaimNum, SUM(InsPayAmt) paid FROM claimproc
                WHERE ClaimNum IN (SELECT ClaimNum FROM _recv) GROUP BY ClaimNum) x ON x.ClaimNum = c.ClaimNum
            SET c.ClaimStatus = 'R', c.DateReceived = {self.D}, c.InsPayAmt = x.paid, c.SecDateTEdit = NOW()""")

    def edits(self) -> None:
        """Address/phone changes, recall rescheduling and a fee change: each bumps the row's cursor."""
        r = self.r
        n_pat = self.scalar("SELECT COUNT(*) FROM patient")
        self.run(f"""UPDATE patient SET Address = CONCAT(PatNum % 997 + 1, ' Oak Ave'), HmPhone = '(503)555-0199',
                DateTStamp = NOW() + INTERVAL PatNum % 1800 SECOND
            WHERE {r.u("ed", "PatNum")} < {self.k_edit / max(n_pat, 1)}""")
        self.run(f"""UPDATE recall SET DatePrevious = {self.D}, DateDue = {self.D} + INTERVAL 6 MONTH,
                DateDueCalc = {self.D} + INTERVAL 6 MONTH, DateTStamp = NOW() + INTERVAL RecallNum % 1800 SECOND
            ORDER BY {r.u("rc", "RecallNum")}, RecallNum LIMIT {self.k_edit}""")
        self.run(f"""UPDATE fee SET Amount = ROUND(Amount * 1.03, 2), SecDateTEdit = NOW()
            ORDER BY {r.u("fe", "FeeNum")}, FeeNum LIMIT {self.k_small}""")

    def confirmation_burst(self) -> None:
        """eConfirmations for tomorrow's appointments: one UPDATE, every row in the same second."""
        self.run(f"""UPDATE appointment SET Confirmed = {self.defnum(2, "cf", "AptNum")}, DateTStamp = NOW()
            WHERE AptStatus = 1 AND AptDateTime >= {self.D} + INTERVAL 1 DAY
              AND AptDateTime < {self.D} + INTERVAL 2 DAY""")

    def hard_deletes(self) -> None:
        r = self.r
        k = max(1, self.k_appts // 10)
        self.run("DROP TEMPORARY TABLE IF EXISTS _gone")
        self.run(f"""CREATE TEMPORARY TABLE _gone (PRIMARY KEY (AptNum)) AS
            SELECT AptNum FROM appointment WHERE AptStatus = 1 AND AptDateTime >= {self.D} + INTERVAL 2 DAY
            ORDER BY {r.u("da", "AptNum")}, AptNum LIMIT {k}""")
        self.history("a.AptNum IN (SELECT AptNum FROM _gone)", action=4)
        self.run("""UPDATE procedurelog p JOIN _gone g ON g.AptNum = p.AptNum SET p.AptNum = 0,
                p.DateTStamp = NOW()""")
        self.run("DELETE a FROM appointment a JOIN _gone g ON g.AptNum = a.AptNum")
        # paysplits entered by mistake: removed, their payment's amount follows
        self.run("DROP TEMPORARY TABLE IF EXISTS _splits")
        self.run(f"""CREATE TEMPORARY TABLE _splits (PRIMARY KEY (SplitNum)) AS
            SELECT ps.SplitNum, ps.PayNum, ps.SplitAmt FROM paysplit ps JOIN payment y ON y.PayNum = ps.PayNum
            WHERE y.PayType <> 0 AND ps.SplitNum > (SELECT MAX(SplitNum) - 20000 FROM paysplit)
            ORDER BY {r.u("ds", "ps.SplitNum")}, ps.SplitNum LIMIT {self.k_small}""")
        self.run("""UPDATE payment y JOIN (SELECT PayNum, SUM(SplitAmt) s FROM _splits GROUP BY PayNum) d
                ON d.PayNum = y.PayNum SET y.PayAmt = ROUND(y.PayAmt - d.s, 2), y.SecDateTEdit = NOW()""")
        self.run("DELETE ps FROM paysplit ps JOIN _splits d ON d.SplitNum = ps.SplitNum")
        # coverage dropped
        self.run(f"DELETE FROM patplan ORDER BY {r.u('dp', 'PatPlanNum')}, PatPlanNum LIMIT {self.k_small}")

    def soft_deletes(self) -> None:
        r = self.r
        self.run(f"""UPDATE procedurelog SET ProcStatus = 6, DateTStamp = NOW()
            WHERE ProcStatus = 1 AND AptNum = 0 ORDER BY {r.u("sp", "ProcNum")}, ProcNum LIMIT {self.k_small}""")
        self.run(f"""UPDATE patient SET PatStatus = 4, DateTStamp = NOW()
            WHERE PatStatus IN (1, 2) ORDER BY {r.u("sd", "PatNum")}, PatNum LIMIT {self.k_small}""")

    def security_log(self) -> None:
        """Half the day's audit rows in one second (a batch job), half spread over the working day."""
        r = self.r
        n_pat = self.scalar("SELECT MAX(PatNum) FROM patient")
        self.run(f"""INSERT INTO securitylog (PermType, UserNum, LogDateTime, LogText, PatNum, CompName, FKey, LogSource,
                DefNum, DefNumError)
            SELECT IF(s.seq % 2 = 0, 93, 208), 1 + FLOOR({r.u("su")} * {ACTIVE_USERS}),
                IF(s.seq % 2 = 0, NOW(), NOW() - INTERVAL 10 HOUR + INTERVAL FLOOR(s.seq * 36000 / {self.k_sec}) SECOND),
                IF(s.seq % 2 = 0, 'Log on', CONCAT('Patient information viewed – ', 'Família')),
                IF(s.seq % 2 = 0, 0, 1 + FLOOR({r.u("sq")} * {n_pat})), 'FRONTDESK1', 0, 0, 0, 0
            FROM seq_1_to_{self.k_sec} s""")
