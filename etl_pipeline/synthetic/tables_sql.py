"""The INSERT ... SELECT statements that fill each table, in dependency order.

Each builder returns the statements for one table. Rows come from MariaDB's Sequence engine
(`seq_1_to_N AS s`) or from joins with tables built before; every value is a deterministic function of
the seed (see `sqlrand`). Row counts follow the reference clinic's est_rows times the scale; lookup
tables (definition, provider, operatory, userod, recalltype, procedurecode, payplan) keep their size.
Helper tables prefixed `_map_` live only in the build database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from etl_pipeline.synthetic import texts
from etl_pipeline.synthetic.schema_data import TABLES
from etl_pipeline.synthetic.sqlrand import Rand, sql_str
from etl_pipeline.synthetic.timeline import HISTORY_DAYS, generation_now, history_start, sql_dt

FIXED_ROWS = {
    "definition": 655,
    "provider": 59,
    "operatory": 16,
    "userod": 86,
    "recalltype": 10,
    "procedurecode": 1730,
    "clinic": 0,
    "payplan": 2,
    "payplancharge": 31,
}
MIN_ROWS = 3
N_CATEGORIES = 56
ACTIVE_PROVIDERS = 12  # ProvNum 1..12 dentists, 13..18 hygienists, the rest former/hidden
ACTIVE_USERS = 30
STD_CODES = len(texts.PROC_CODES)

# Secondary keys the generator's joins and the mutator's lookups need (real OpenDental has these too).
EXTRA_KEYS = {
    "patient": ("KEY `Guarantor` (`Guarantor`)",),
    "appointment": ("KEY `PatNum` (`PatNum`)", "KEY `AptDateTime` (`AptDateTime`)"),
    "procedurelog": ("KEY `PatNum` (`PatNum`)", "KEY `AptNum` (`AptNum`)"),
    "claimproc": ("KEY `ClaimNum` (`ClaimNum`)", "KEY `ProcNum` (`ProcNum`)"),
    "paysplit": ("KEY `PayNum` (`PayNum`)",),
    "patplan": ("KEY `PatNum` (`PatNum`)",),
    "claim": ("KEY `PatNum` (`PatNum`)",),
}


def row_counts(scale: float) -> dict[str, int]:
    counts = {}
    for table, facts in TABLES.items():
        if table in FIXED_ROWS:
            counts[table] = FIXED_ROWS[table]
        else:
            counts[table] = max(MIN_ROWS, round(facts["est_rows"] * scale))
    counts["fee"] = max(counts["fee"], STD_CODES + MIN_ROWS)
    return counts


@dataclass
class Builder:
    seed: int
    scale: float
    n: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.n = row_counts(self.scale)
        self.r = Rand(self.seed)
        self.now = generation_now(self.seed)
        self.start = history_start(self.seed)
        self.NOW = sql_dt(self.now)
        self.START = sql_dt(self.start)
        self.UPGRADE = sql_dt(self.now - timedelta(days=40, hours=3))  # a bulk "version upgrade" touch
        self.LAST = sql_dt(self.now - timedelta(seconds=1))

    # ------------------------------------------------------------------ expression helpers
    def day(self, frac: str) -> str:
        """A datetime at midnight `frac` (0..1) of the way through the history."""
        return f"({self.START} + INTERVAL FLOOR(({frac}) * {HISTORY_DAYS}) DAY)"

    def cursor(self, event: str, salt: str, key: str = "s.seq") -> str:
        """A DateTStamp/SecDateTEdit value: some time in the two days after the event, never after "now"
        (an event of the last two days: some time between it and now; one still ahead: in the last hour);
        12% of the rows older than the upgrade instant share that one second (bulk touch)."""
        u = self.r.u(salt + "c", key)
        delay = self.r.u(salt + "d", key)
        age = f"TIMESTAMPDIFF(SECOND, {event}, {self.LAST})"
        later = (
            f"IF({age} > 0, ({event}) + INTERVAL FLOOR({delay} * LEAST({age}, 172800)) SECOND, "
            f"{self.LAST} - INTERVAL FLOOR({delay} * 3600) SECOND)"
        )
        return f"IF({u} < 0.12 AND ({event}) < {self.UPGRADE}, {self.UPGRADE}, {later})"

    def last_edit(self, created: str, when: str) -> str:
        """The event a scheduled row was last edited at: when it happened (set complete, broken, ...), or
        when it was booked if that is still ahead (at least two hours ahead of now)."""
        return f"IF({when} <= {self.now_minus(7200)}, GREATEST({created}, {when}), {created})"

    def defnum(self, category: int, salt: str, key: str = "s.seq") -> str:
        """A definition row of `category` (definition rows cycle through the 56 categories)."""
        return f"({category} + 1 + {N_CATEGORIES} * FLOOR({self.r.u(salt, key)} * 11))"

    def prov(self, salt: str, key: str = "s.seq") -> str:
        return self.r.int(ACTIVE_PROVIDERS, salt, key)

    def hyg(self, salt: str, key: str = "s.seq") -> str:
        return (
            f"IF({self.r.chance(0.4, salt, key)}, {ACTIVE_PROVIDERS} + {self.r.int(6, salt + 'h', key)}, 0)"
        )

    def user(self, salt: str, key: str = "s.seq") -> str:
        return self.r.int(ACTIVE_USERS, salt, key)

    def patient(self, salt: str, key: str = "s.seq") -> str:
        return self.r.int(self.n["patient"], salt, key)

    def note(self, salt: str, key: str = "s.seq", p_null: float = 0.3, p_empty: float = 0.3) -> str:
        """NULL, '' or a note with CR/LF/tab/backslash/accents/emoji (both NULL and '' mean empty)."""
        u = self.r.u(salt, key)
        return (
            f"CASE WHEN {u} < {p_null} THEN NULL WHEN {u} < {p_null + p_empty} THEN '' "
            f"ELSE {self.r.pick_str(texts.NOTES, salt + 'n', key)} END"
        )

    def text(self, salt: str, key: str = "s.seq", p_empty: float = 0.6) -> str:
        """For NOT NULL text columns: '' or a note."""
        return f"IF({self.r.chance(p_empty, salt, key)}, '', {self.r.pick_str(texts.NOTES, salt + 'n', key)})"

    def phone(self, salt: str, key: str = "s.seq") -> str:
        return f"CONCAT('(503)555-', LPAD(FLOOR({self.r.u(salt, key)} * 10000), 4, '0'))"

    def money(self, lo: float, hi: float, salt: str, key: str = "s.seq") -> str:
        return self.r.between(lo, hi, salt, key)

    @staticmethod
    def insert(table: str, values: dict[str, str], source: str) -> str:
        cols = ", ".join(f"`{c}`" for c in values)
        exprs = ",\n  ".join(f"{expr} AS `{c}`" for c, expr in values.items())
        return f"INSERT INTO `{table}` ({cols})\nSELECT\n  {exprs}\n{source}"

    def seq(self, table: str) -> str:
        return f"FROM seq_1_to_{self.n[table]} AS s"

    # ------------------------------------------------------------------ lookups
    def definition(self):
        names = ", ".join(sql_str(f"Def{c}") for c in range(N_CATEGORIES))
        r = self.r
        return [
            self.insert(
                "definition",
                {
                    "DefNum": "s.seq",
                    "Category": f"(s.seq - 1) % {N_CATEGORIES}",
                    "ItemOrder": f"(s.seq - 1) DIV {N_CATEGORIES}",
                    "ItemName": f"CONCAT(ELT((s.seq - 1) % {N_CATEGORIES} + 1, {names}), ' ', (s.seq - 1) DIV {N_CATEGORIES} + 1)",
                    "ItemValue": f"IF({r.chance(0.5, 'dv')}, '', IF({r.chance(0.5, 'dv2')}, NULL, 'X'))",
                    "ItemColor": f"-16777216 + FLOOR({r.u('dc')} * 16777216)",
                    "IsHidden": f"{r.chance(0.05, 'dh')}",
                },
                self.seq("definition"),
            )
        ]

    def provider(self):
        r = self.r
        return [
            self.insert(
                "provider",
                {
                    "ProvNum": "s.seq",
                    "Abbr": "CONCAT(IF(s.seq BETWEEN 13 AND 18, 'HYG', 'DOC'), s.seq)",
                    "ItemOrder": "s.seq - 1",
                    "LName": r.pick_str(texts.LAST_NAMES, "pl"),
                    "FName": r.pick_str(texts.FIRST_NAMES, "pf"),
                    "MI": "IF(s.seq % 3 = 0, NULL, '')",
                    "FeeSched": "1",
                    "Specialty": self.defnum(35, "ps"),
                    "SSN": "CONCAT('9', LPAD(s.seq, 8, '0'))",
                    "StateLicense": "CONCAT('OR', LPAD(s.seq * 37, 6, '0'))",
                    "IsSecondary": "s.seq BETWEEN 13 AND 18",
                    "ProvColor": f"-16777216 + FLOOR({r.u('pc')} * 16777216)",
                    "IsHidden": "s.seq > 40",
                    "SigOnFile": "1",
                    "DateTStamp": self.cursor(self.day(r.u("pt")), "pt"),
                    "AnesthProvType": "0",
                    "ProvStatus": "s.seq > 50",
                    "Birthdate": f"IF(s.seq % 4 = 0, '0001-01-01', '1960-01-01' + INTERVAL FLOOR({r.u('pb')} * 10000) DAY)",
                    "HourlyProdGoalAmt": "IF(s.seq <= 18, 400 + s.seq * 10.5, 0)",
                    "DateTerm": "IF(s.seq > 40, '2020-06-30', '0001-01-01')",
                },
                self.seq("provider"),
            )
        ]

    def operatory(self):
        r = self.r
        return [
            self.insert(
                "operatory",
                {
                    "OperatoryNum": "s.seq",
                    "OpName": "CONCAT('Op ', s.seq)",
                    "Abbrev": "CONCAT('O', s.seq)",
                    "ItemOrder": "s.seq - 1",
                    "IsHidden": "s.seq > 14",
                    "ProvDentist": f"IF(s.seq <= 10, {self.prov('od')}, 0)",
                    "ProvHygienist": f"IF(s.seq > 10, {ACTIVE_PROVIDERS} + {r.int(6, 'oh')}, 0)",
                    "IsHygiene": "s.seq > 10",
                    "DateTStamp": self.cursor(self.day(r.u("ot")), "ot"),
                    "OperatoryType": f"IF(s.seq % 2 = 0, {self.defnum(55, 'oy')}, 0)",
                },
                self.seq("operatory"),
            )
        ]

    def userod(self):
        return [
            self.insert(
                "userod",
                {
                    "UserNum": "s.seq",
                    "UserName": "CONCAT('user', s.seq)",
                    "Password": "CONCAT('SHA3-512$', SHA2(CONCAT('pw', s.seq), 256))",
                    "ProvNum": "IF(s.seq <= 18, s.seq, 0)",
                    "IsHidden": f"s.seq > {ACTIVE_USERS}",
                    "AnesthProvType": "3",
                    "DateTLastLogin": f"IF(s.seq <= {ACTIVE_USERS}, {self.NOW} - INTERVAL s.seq HOUR, '0001-01-01 00:00:00')",
                    "FailedAttempts": "s.seq % 3 = 0",
                },
                self.seq("userod"),
            )
        ]

    def clinic(self):
        return []  # single-location practice: the table exists and is empty, ClinicNum = 0 everywhere

    def recalltype(self):
        return [
            self.insert(
                "recalltype",
                {
                    "RecallTypeNum": "s.seq",
                    "Description": "ELT(s.seq, 'Prophy', 'Child Prophy', 'Perio', '4BW', 'FMX', 'Pano', 'Exam', "
                    "'Fluoride', 'Sealant check', NULL)",
                    "DefaultInterval": "IF(s.seq = 3, 196608 + 1, 393216)",
                    "TimePattern": "IF(s.seq <= 3, '/XXXX/', NULL)",
                    "Procedures": "ELT(s.seq, 'D0120,D1110', 'D0120,D1120', 'D4910', 'D0274', 'D0210', 'D0330', "
                    "'D0120', 'D1206', 'D1351', '')",
                    "AppendToSpecial": "s.seq = 4",
                },
                self.seq("recalltype"),
            )
        ]

    def procedurecode(self):
        codes = ", ".join(sql_str(c[0]) for c in texts.PROC_CODES)
        descs = ", ".join(sql_str(c[1]) for c in texts.PROC_CODES)
        abbrs = ", ".join(sql_str(c[2]) for c in texts.PROC_CODES)
        std = STD_CODES
        code = (
            f"CASE WHEN s.seq <= {std} THEN ELT(s.seq, {codes}) "
            f"WHEN s.seq > 1700 THEN LOWER(ELT((s.seq - 1701) % {std} + 1, {codes})) "  # case-sensitive twins
            f"ELSE CONCAT('D', LPAD(s.seq * 5 + 3, 4, '0')) END"
        )
        r = self.r
        return [
            self.insert(
                "procedurecode",
                {
                    "CodeNum": "s.seq",
                    "ProcCode": code,
                    "Descript": f"IF(s.seq <= {std}, ELT(s.seq, {descs}), CONCAT('custom procedure ', s.seq))",
                    "AbbrDesc": f"IF(s.seq <= {std}, ELT(s.seq, {abbrs}), CONCAT('Cust', s.seq))",
                    "ProcTime": "CONCAT('/', REPEAT('X', 1 + s.seq % 6), '/')",
                    "ProcCat": self.defnum(11, "cc"),
                    "TreatArea": "ELT(1 + s.seq % 5, 0, 1, 2, 3, 4)",
                    "IsHygiene": "s.seq IN (9, 10, 25, 26, 27)",
                    "MedicalCode": "IF(s.seq % 7 = 0, NULL, '')",
                    "GraphicColor": f"IF(s.seq % 3 = 0, -16777216 + FLOOR({r.u('cg')} * 16777216), 0)",
                    "LaymanTerm": "IF(s.seq % 5 = 0, NULL, '')",
                    "SubstitutionCode": "IF(s.seq % 9 = 0, NULL, '')",
                    "DateTStamp": self.cursor(self.day(r.u("ct")), "ct"),
                    "DefaultNote": "IF(s.seq % 11 = 0, NULL, '')",
                },
                self.seq("procedurecode"),
            )
        ]

    def feesched(self):
        r = self.r
        return [
            self.insert(
                "feesched",
                {
                    "FeeSchedNum": "s.seq",
                    "Description": "IF(s.seq = 1, 'Standard', CONCAT(ELT(1 + s.seq % 4, 'PPO ', 'Delta ', 'Cigna ', "
                    "'Out of network '), s.seq))",
                    "FeeSchedType": "IF(s.seq = 1, 0, ELT(1 + s.seq % 5, 0, 1, 2, 0, 3))",
                    "ItemOrder": "s.seq - 1",
                    "IsHidden": f"s.seq > 3 AND {r.chance(0.3, 'fh')}",
                    "SecUserNumEntry": self.user("fu"),
                    "SecDateEntry": f"DATE({self.day(r.u('fd'))})",
                    "SecDateTEdit": self.cursor(self.day(r.u("fd")), "ft"),
                },
                self.seq("feesched"),
            )
        ]

    def fee(self):
        """FeeNum 1..40 are the standard schedule's fee for CodeNum = FeeNum (procedurelog fees join on it)."""
        fees = ", ".join(str(c[3]) for c in texts.PROC_CODES)
        std = STD_CODES
        r = self.r
        code = f"IF(s.seq <= {std}, s.seq, {r.int(self.n['procedurecode'], 'ec')})"
        base = f"IF(s.seq <= {std}, ELT(s.seq, {fees}), ROUND(30 + {r.u('ea')} * 900, 0))"
        return [
            self.insert(
                "fee",
                {
                    "FeeNum": "s.seq",
                    "Amount": f"IF(s.seq <= {std}, {base}, ROUND({base} * (0.6 + {r.u('ef')} * 0.5), 2))",
                    "OldCode": "''",
                    "FeeSched": f"IF(s.seq <= {std}, 1, 1 + {r.int(self.n['feesched'] - 1, 'es')})",
                    "CodeNum": code,
                    "SecUserNumEntry": self.user("eu"),
                    "SecDateEntry": f"DATE({self.day(r.u('ed'))})",
                    "SecDateTEdit": self.cursor(self.day(r.u("ed")), "et"),
                    "DateEffective": f"IF({r.chance(0.9, 'ee')}, '0001-01-01', DATE({self.day(r.u('ed'))}))",
                },
                self.seq("fee"),
            )
        ]

    def employer(self):
        """Sparse PKs (every 24th number), as in the reference clinic."""
        r = self.r
        return [
            self.insert(
                "employer",
                {
                    "EmployerNum": "s.seq * 24",
                    "EmpName": r.pick_str(texts.COMPANIES, "mn"),
                    "Address": f"IF({r.chance(0.5, 'ma')}, '', CONCAT(s.seq % 900 + 100, ' ', {r.pick_str(texts.STREETS, 'ms')}))",
                    "Address2": "IF(s.seq % 2 = 0, NULL, '')",
                    "City": r.pick_str([c[0] for c in texts.CITIES], "mc"),
                    "State": "'OR'",
                    "Zip": "IF(s.seq % 5 = 0, '', '97301')",
                    "Phone": self.phone("mp"),
                },
                self.seq("employer"),
            )
        ]

    def employer_num(self, salt: str, key: str = "s.seq") -> str:
        return f"(24 * {self.r.int(self.n['employer'], salt, key)})"

    def carrier(self):
        r = self.r
        return [
            self.insert(
                "carrier",
                {
                    "CarrierNum": "s.seq",
                    "CarrierName": f"CONCAT({r.pick_str(texts.CARRIERS, 'kn')}, IF(s.seq > 14, CONCAT(' #', s.seq), ''))",
                    "Address": "CONCAT('PO Box ', s.seq * 7)",
                    "City": r.pick_str([c[0] for c in texts.CITIES], "kc"),
                    "State": "'OR'",
                    "Zip": "'97240'",
                    "Phone": self.phone("kp"),
                    "ElectID": "LPAD(s.seq * 13, 5, '0')",
                    "IsHidden": f"{r.chance(0.1, 'kh')}",
                    "SecUserNumEntry": self.user("ku"),
                    "SecDateEntry": f"DATE({self.day(r.u('kd'))})",
                    "SecDateTEdit": self.cursor(self.day(r.u("kd")), "kt"),
                    "TIN": "''",
                    "CarrierGroupName": f"IF(s.seq % 3 = 0, {self.defnum(46, 'kg')}, 0)",
                    "ApptTextBackColor": "-16777216",
                },
                self.seq("carrier"),
            )
        ]

    # ------------------------------------------------------------------ patients and families
    def patient_rows(self):
        """Families: patients come in blocks of 4; the first `size` of a block share its first patient as
        Guarantor, the rest are their own guarantors."""
        r = self.r
        n = self.n["patient"]
        pos = "((s.seq - 1) % 4)"
        size = f"(1 + (CRC32(CONCAT('{self.seed}fam', (s.seq - 1) DIV 4)) % 4))"
        created = f"({self.START} + INTERVAL FLOOR((s.seq - 1) * {HISTORY_DAYS * 86400} / {n}) SECOND)"
        city = f"(1 + FLOOR({r.u('ci')} * {len(texts.CITIES)}))"
        status = r.pick(["0"] * 40 + ["1", "1", "2", "2", "2", "2", "2", "3", "4", "5", "6"], "ps")
        return [
            self.insert(
                "patient",
                {
                    "PatNum": "s.seq",
                    "LName": r.pick_str(texts.LAST_NAMES, "ln"),
                    "FName": r.pick_str(texts.FIRST_NAMES, "fn"),
                    "MiddleI": r.pick(["NULL", "''", "''", "'A'", "'J'", "'M'"], "mi"),
                    "Preferred": r.pick(["NULL", "''", "''", "''", "'Bob'", "'Liz'"], "pr"),
                    "PatStatus": status,
                    "Gender": r.pick(["0", "1", "0", "1", "2", "3"], "ge"),
                    "Position": f"IF({pos} > 0 AND {pos} < {size}, 2, {r.pick(['0', '1', '1', '3', '4'], 'po')})",
                    "Birthdate": f"IF({r.chance(0.02, 'bd')}, '0001-01-01', '1940-01-01' + INTERVAL FLOOR({r.u('bd2')} * 30000) DAY)",
                    "SSN": f"IF({r.chance(0.3, 'ssn')}, '', CONCAT('9', LPAD(s.seq, 8, '0')))",
                    "Address": f"CONCAT(FLOOR(100 + {r.u('ad')} * 9800), ' ', {r.pick_str(texts.STREETS, 'st')})",
                    "Address2": r.pick(["NULL", "''", "''", "''", "'Apt 4'", "'#12B'"], "a2"),
                    "City": f"ELT({city}, {', '.join(sql_str(c[0]) for c in texts.CITIES)})",
                    "State": f"ELT({city}, {', '.join(sql_str(c[1]) for c in texts.CITIES)})",
                    "Zip": f"ELT({city}, {', '.join(sql_str(c[2]) for c in texts.CITIES)})",
                    "HmPhone": f"IF({r.chance(0.4, 'hp')}, '', {self.phone('hp2')})",
                    "WkPhone": f"IF({r.chance(0.8, 'wp')}, IF({r.chance(0.5, 'wp3')}, NULL, ''), {self.phone('wp2')})",
                    "WirelessPhone": f"IF({r.chance(0.2, 'cp')}, '', {self.phone('cp2')})",
                    "Guarantor": f"IF({pos} < {size}, s.seq - {pos}, s.seq)",
                    "CreditType": "''",
                    "Email": f"IF({r.chance(0.3, 'em')}, '', CONCAT('pt', s.seq, '@example.com'))",
                    "EstBalance": "0",
                    "PriProv": self.prov("pp"),
                    "SecProv": self.hyg("sp"),
                    "FeeSched": f"IF({r.chance(0.9, 'pf')}, 0, {r.int(self.n['feesched'], 'pf2')})",
                    "BillingType": self.defnum(4, "bt"),
                    "ImageFolder": "CONCAT('Pt', s.seq)",
                    "AddrNote": self.note("an", p_null=0.6),
                    "FamFinUrgNote": self.note("ff", p_null=0.6),
                    "MedUrgNote": f"IF({r.chance(0.95, 'mu')}, '', 'Premed required')",
                    "ApptModNote": "''",
                    "StudentStatus": "''",
                    "SchoolName": "''",
                    "ChartNumber": "IF(s.seq % 10 = 0, CONCAT('C', s.seq), '')",
                    "EmployerNum": f"IF({r.chance(0.7, 'pe')}, 0, {self.employer_num('pe2')})",
                    "DateFirstVisit": f"IF({r.chance(0.05, 'fv')}, '0001-01-01', DATE({created}))",
                    "HasIns": "''",
                    "PlannedIsDone": "0",
                    "PreferConfirmMethod": r.pick(["0", "2", "4", "5", "8"], "pc"),
                    "PreferContactMethod": r.pick(["0", "2", "4", "5", "8"], "pm"),
                    "PreferRecallMethod": r.pick(["0", "2", "4", "5", "8", "7"], "prm"),
                    "SchedBeforeTime": f"IF({r.chance(0.05, 'sb')}, '10:00:00', NULL)",
                    "SchedAfterTime": f"IF({r.chance(0.05, 'sa')}, '14:30:00', NULL)",
                    "Language": r.pick(["''", "''", "''", "NULL", "'spa'", "'eng'"], "la"),
                    "Title": r.pick(["NULL", "''", "''", "'Mr.'", "'Ms.'", "'Dr.'"], "ti"),
                    "DateTStamp": self.cursor(created, "pt"),
                    "Country": "''",
                    "DateTimeDeceased": "'0001-01-01 00:00:00'",
                    "BillingCycleDay": "1",
                    "SecUserNumEntry": f"IF({created} < '2019-06-01', 0, {self.user('pu')})",
                    "SecDateEntry": f"IF({created} < '2019-06-01', '0001-01-01', DATE({created}))",
                    "TxtMsgOk": r.pick(["0", "1", "2"], "tx"),
                },
                self.seq("patient"),
            ),
            (
                "UPDATE `patient` SET `DateTimeDeceased` = DATE_SUB(DATE(`DateTStamp`), INTERVAL 3 DAY), "
                "`DateTStamp` = `DateTStamp` WHERE `PatStatus` = 5"
            ),
        ]

    def referral(self):
        r = self.r
        return [
            self.insert(
                "referral",
                {
                    "ReferralNum": "s.seq",
                    "LName": r.pick_str(texts.LAST_NAMES, "rl"),
                    "FName": r.pick_str(texts.FIRST_NAMES, "rf"),
                    "MName": "IF(s.seq % 2 = 0, NULL, '')",
                    "SSN": "''",
                    "Specialty": self.defnum(35, "rs"),
                    "ST": "'OR'",
                    "Telephone": "CONCAT('503555', LPAD(s.seq % 10000, 4, '0'))",
                    "Address": f"CONCAT(s.seq, ' ', {r.pick_str(texts.STREETS, 'ra')})",
                    "City": r.pick_str([c[0] for c in texts.CITIES], "rc"),
                    "Zip": "'97301'",
                    "Note": self.note("rn"),
                    "IsHidden": f"{r.chance(0.1, 'rh')}",
                    "NotPerson": f"{r.chance(0.1, 'rp')}",
                    "EMail": "''",
                    "PatNum": f"IF({r.chance(0.15, 'rpt')}, {self.patient('rpt2')}, 0)",
                    "IsDoctor": f"{r.chance(0.7, 'rd')}",
                    "DateTStamp": self.cursor(self.day(r.u("rt")), "rt"),
                    "BusinessName": "''",
                    "DisplayNote": "''",
                },
                self.seq("referral"),
            )
        ]

    def refattach(self):
        r = self.r
        d = self.day(r.u("ad"))
        return [
            self.insert(
                "refattach",
                {
                    "RefAttachNum": "s.seq",
                    "ReferralNum": r.int(self.n["referral"], "ar"),
                    "PatNum": self.patient("ap"),
                    "ItemOrder": "0",
                    "RefDate": f"DATE({d})",
                    "RefType": r.pick(["0", "1", "1", "1", "2"], "at"),
                    "RefToStatus": r.pick(["0", "0", "1", "2"], "as"),
                    "Note": self.note("an"),
                    "DateTStamp": self.cursor(d, "att"),
                },
                self.seq("refattach"),
            )
        ]

    # ------------------------------------------------------------------ insurance
    def insplan(self):
        r = self.r
        return [
            self.insert(
                "insplan",
                {
                    "PlanNum": "s.seq",
                    "GroupName": f"IF({r.chance(0.2, 'ig')}, '', {r.pick_str(texts.COMPANIES, 'ig2')})",
                    "GroupNum": f"IF({r.chance(0.2, 'in')}, NULL, LPAD(s.seq * 31, 6, '0'))",
                    "PlanNote": self.text("ip"),
                    "FeeSched": f"IF({r.chance(0.6, 'if')}, 0, {r.int(self.n['feesched'], 'if2')})",
                    "PlanType": r.pick(["''", "''", "'p'", "'p'", "'f'", "'c'"], "it"),
                    "EmployerNum": f"IF({r.chance(0.4, 'ie')}, 0, {self.employer_num('ie2')})",
                    "CarrierNum": r.int(self.n["carrier"], "ic"),
                    "TrojanID": "''",
                    "DivisionNo": "''",
                    "IsHidden": f"{r.chance(0.05, 'ih')}",
                    "SecUserNumEntry": self.user("iu"),
                    "SecDateEntry": f"DATE({self.day(r.u('id'))})",
                    "SecDateTEdit": self.cursor(self.day(r.u("id")), "itt"),
                    "BillingType": "0",
                    "IsBlueBookEnabled": "1",
                },
                self.seq("insplan"),
            )
        ]

    def inssub(self):
        r = self.r
        d = self.day(r.u("sd"))
        return [
            self.insert(
                "inssub",
                {
                    "InsSubNum": "s.seq",
                    "PlanNum": r.int(self.n["insplan"], "sp"),
                    "Subscriber": "p.Guarantor",
                    "DateEffective": f"IF({r.chance(0.3, 'se')}, '0001-01-01', DATE({d}))",
                    "DateTerm": f"IF({r.chance(0.9, 'st')}, '0001-01-01', DATE({d}) + INTERVAL 2 YEAR)",
                    "ReleaseInfo": "1",
                    "AssignBen": "1",
                    "SubscriberID": "CONCAT('XZ', LPAD(s.seq * 7919 % 10000000, 9, '0'))",
                    "BenefitNotes": self.text("sb", p_empty=0.9),
                    "SubscNote": self.text("sn", p_empty=0.9),
                    "SecUserNumEntry": self.user("su"),
                    "SecDateEntry": f"DATE({d})",
                    "SecDateTEdit": self.cursor(d, "stt"),
                },
                f"FROM seq_1_to_{self.n['inssub']} AS s JOIN patient AS p "
                f"ON p.PatNum = FLOOR((s.seq - 1) * {self.n['patient']} / {self.n['inssub']}) + 1",
            )
        ]

    def patplan(self):
        """First one patplan per subscription (the subscriber), then family members and secondaries."""
        r = self.r
        subs = self.n["inssub"]
        member = f"LEAST(i.Subscriber + 1 + s.seq % 3, {self.n['patient']})"
        d = self.day(r.u("qd"))
        return [
            self.insert(
                "patplan",
                {
                    "PatPlanNum": "s.seq",
                    "PatNum": "IF(s.seq <= "
                    + str(subs)
                    + ", i.Subscriber, COALESCE(m.PatNum, i.Subscriber))",
                    "Ordinal": f"IF(s.seq <= {subs} OR m.PatNum IS NOT NULL, 1, 2)",
                    "IsPending": "0",
                    "Relationship": f"IF(s.seq <= {subs} OR m.PatNum IS NULL, 0, {r.pick(['1', '2', '2'], 'qr')})",
                    "PatID": "''",
                    "InsSubNum": "i.InsSubNum",
                    "OrthoAutoFeeBilledOverride": "-1",
                    "SecDateTEntry": f"IF({r.chance(0.2, 'qe')}, '0001-01-01 00:00:00', {d})",
                    "SecDateTEdit": self.cursor(d, "qt"),
                },
                f"FROM seq_1_to_{self.n['patplan']} AS s\n"
                f"JOIN inssub AS i ON i.InsSubNum = IF(s.seq <= {subs}, s.seq, {r.int(subs, 'qs')})\n"
                f"LEFT JOIN patient AS m ON s.seq > {subs} AND m.PatNum = {member} AND m.Guarantor = i.Subscriber",
            ),
            # first coverage per patient, used by appointments and claims
            "CREATE TABLE `_map_patins` (PatNum BIGINT PRIMARY KEY, InsSubNum BIGINT, PlanNum BIGINT) ENGINE=MyISAM",
            (
                "INSERT IGNORE INTO `_map_patins` SELECT pp.PatNum, pp.InsSubNum, i.PlanNum FROM patplan pp "
                "JOIN inssub i ON i.InsSubNum = pp.InsSubNum ORDER BY pp.Ordinal, pp.PatPlanNum"
            ),
        ]

    # ------------------------------------------------------------------ scheduling and treatment
    def appointment(self):
        """AptNums grow with time; the last ~60 days lie after "now" and are still Scheduled."""
        r = self.r
        n = self.n["appointment"]
        span = HISTORY_DAYS + 60
        when = (
            f"({self.START} + INTERVAL FLOOR((s.seq - 1) * {span} / {n}) DAY "
            f"+ INTERVAL (480 + 10 * FLOOR({r.u('tm')} * 54)) MINUTE)"
        )
        past = f"{r.pick(['2'] * 39 + ['5'] * 4 + ['3'] * 3 + ['6'] * 2 + ['7', '8', '1'], 'as')}"
        status = f"IF({when} > {self.NOW}, IF({r.chance(0.95, 'af')}, 1, 3), {past})"
        # booked up to 60 days ahead; one still ahead was booked in the last 60 days (clamping its booking
        # time to now piled the bookings of the next weeks into the source's last hour)
        created = f"(LEAST({when}, {self.now_minus(3600)}) - INTERVAL FLOOR({r.u('ac')} * 60) DAY)"
        pat = self.patient("ap")
        return [
            self.insert(
                "appointment",
                {
                    "AptNum": "s.seq",
                    "PatNum": pat,
                    "AptStatus": status,
                    "Pattern": f"CONCAT('//', REPEAT('X', 2 + FLOOR({r.u('pa')} * 8)), '//')",
                    "Confirmed": self.defnum(2, "cf"),
                    "TimeLocked": f"{r.chance(0.05, 'tl')}",
                    "Op": r.int(14, "op"),
                    "Note": self.note("no", p_null=0.4, p_empty=0.4),
                    "ProvNum": self.prov("pv"),
                    "ProvHyg": self.hyg("ph"),
                    "AptDateTime": when,
                    "NextAptNum": "0",
                    "UnschedStatus": f"IF({r.chance(0.9, 'us')}, 0, {self.defnum(13, 'us2')})",
                    "IsNewPatient": f"{r.chance(0.08, 'np')}",
                    "ProcDescript": r.pick_str(
                        ["PerEx, Pro, 4BW", "C2P", "CrnPC", "SRP", "", "Ext", "PerEx"], "pd"
                    ),
                    "ClinicNum": "0",
                    "IsHygiene": f"{r.chance(0.35, 'ih')}",
                    "DateTStamp": self.cursor(self.last_edit(created, when), "at"),
                    "DateTimeArrived": f"IF({status} = 2, {when} - INTERVAL 5 MINUTE, "
                    f"IF({r.chance(0.02, 'zd')}, '0000-00-00 00:00:00', '0001-01-01 00:00:00'))",
                    "DateTimeSeated": f"IF({status} = 2, {when} + INTERVAL 2 MINUTE, '0001-01-01 00:00:00')",
                    "DateTimeDismissed": f"IF({status} = 2, {when} + INTERVAL 55 MINUTE, '0001-01-01 00:00:00')",
                    "InsPlan1": "COALESCE(m.PlanNum, 0)",
                    "InsPlan2": "0",
                    "DateTimeAskedToArrive": "'0001-01-01 00:00:00'",
                    "ProcsColored": "''",
                    "ColorOverride": f"IF({r.chance(0.9, 'co')}, 0, -16777216 + FLOOR({r.u('co2')} * 16777216))",
                    "SecUserNumEntry": self.user("au"),
                    "SecDateTEntry": f"IF({created} < '2019-01-01', '0001-01-01 00:00:00', {created})",
                    "ProvBarText": "''",
                    "PatternSecondary": "''",
                    "SecurityHash": "''",
                },
                f"FROM seq_1_to_{n} AS s LEFT JOIN _map_patins AS m ON m.PatNum = {pat}",
            ),
        ]

    def now_minus(self, seconds: int) -> str:
        return sql_dt(self.now - timedelta(seconds=seconds))

    def histappointment(self):
        r = self.r
        action = r.pick(["0"] * 6 + ["1"] * 3 + ["2", "3"], "ha")
        when = f"LEAST(a.DateTStamp, {self.LAST})"
        return [
            self.insert(
                "histappointment",
                {
                    "HistApptNum": "s.seq",
                    "HistUserNum": self.user("hu"),
                    "HistDateTStamp": when,
                    "HistApptAction": action,
                    "ApptSource": "0",
                    "AptNum": "a.AptNum",
                    "PatNum": "a.PatNum",
                    "AptStatus": "a.AptStatus",
                    "Pattern": "a.Pattern",
                    "Confirmed": "a.Confirmed",
                    "TimeLocked": "a.TimeLocked",
                    "Op": "a.Op",
                    "Note": "COALESCE(a.Note, '')",
                    "ProvNum": "a.ProvNum",
                    "ProvHyg": "a.ProvHyg",
                    "AptDateTime": "a.AptDateTime",
                    "NextAptNum": "a.NextAptNum",
                    "UnschedStatus": "a.UnschedStatus",
                    "IsNewPatient": "a.IsNewPatient",
                    "ProcDescript": "COALESCE(a.ProcDescript, '')",
                    "ClinicNum": "0",
                    "IsHygiene": "a.IsHygiene",
                    "DateTStamp": when,
                    "DateTimeArrived": "IF(a.DateTimeArrived = '0000-00-00 00:00:00', '0001-01-01 00:00:00', a.DateTimeArrived)",
                    "DateTimeSeated": "a.DateTimeSeated",
                    "DateTimeDismissed": "a.DateTimeDismissed",
                    "InsPlan1": "a.InsPlan1",
                    "InsPlan2": "a.InsPlan2",
                    "DateTimeAskedToArrive": "a.DateTimeAskedToArrive",
                    "ProcsColored": "a.ProcsColored",
                    "ColorOverride": "a.ColorOverride",
                    "SecUserNumEntry": "a.SecUserNumEntry",
                    "SecDateTEntry": "a.SecDateTEntry",
                },
                f"FROM seq_1_to_{self.n['histappointment']} AS s JOIN appointment AS a ON a.AptNum = "
                f"{r.int(self.n['appointment'], 'hn')}",
            )
        ]

    def procedurelog(self):
        """80% of the procedures belong to appointments (about 9 per appointment, status from the
        appointment); the rest are existing/conditions/treatment-planned work without one."""
        r = self.r
        n = self.n["procedurelog"]
        attached = round(n * 0.8)
        apt_of = f"FLOOR((s.seq - 1) * {self.n['appointment']} / {attached}) + 1"
        loose_status = r.pick(["4", "4", "7", "7", "7", "1", "1", "1", "3", "2"], "ls")
        status = (
            f"CASE WHEN a.AptNum IS NULL THEN {loose_status} "
            f"WHEN a.AptStatus = 2 THEN IF({r.chance(0.03, 'del')}, 6, 2) ELSE 1 END"
        )
        loose_date = f"DATE({self.day(r.u('ld'))})"
        pdate = f"IF(a.AptNum IS NULL, {loose_date}, DATE(a.AptDateTime))"
        code = (
            f"IF({r.chance(0.85, 'cd')}, {r.int(STD_CODES, 'cd2')}, {r.int(self.n['procedurecode'], 'cd3')})"
        )
        entered = f"(IF(a.AptNum IS NULL, {loose_date}, a.SecDateTEntry) + INTERVAL 0 SECOND)"
        entered = f"IF({entered} < {self.START}, {pdate} - INTERVAL 1 DAY, {entered})"
        tooth = f"IF({r.chance(0.5, 'tn')}, '', CAST({r.int(32, 'tn2')} AS CHAR))"
        return [
            "CREATE TABLE `_map_proc` (ProcNum BIGINT PRIMARY KEY, CodeNum BIGINT) ENGINE=MyISAM",
            f"INSERT INTO `_map_proc` SELECT s.seq, {code} FROM seq_1_to_{n} AS s",
            self.insert(
                "procedurelog",
                {
                    "ProcNum": "s.seq",
                    "PatNum": f"COALESCE(a.PatNum, {self.patient('lp')})",
                    "AptNum": "IF(a.AptNum IS NULL OR a.AptStatus = 6, 0, a.AptNum)",
                    "OldCode": "''",
                    "ProcDate": pdate,
                    "ProcFee": f"IF({status} IN (4, 7), 0, IF(c.CodeNum <= {STD_CODES}, f.Amount, "
                    f"ROUND(30 + c.CodeNum * 37 % 900, 0)))",
                    "Surf": r.pick(
                        ["''", "''", "''", "NULL", "'MOD'", "'O'", "'DO'", "'B'", "'MO'", "'UL'"], "sf"
                    ),
                    "ToothNum": tooth,
                    "ToothRange": "''",
                    "Priority": f"IF({r.chance(0.8, 'pr')}, 0, {self.defnum(20, 'pr2')})",
                    "ProcStatus": status,
                    "ProvNum": f"COALESCE(a.ProvNum, {self.prov('lv')})",
                    "Dx": f"IF({r.chance(0.9, 'dx')}, 0, {self.defnum(16, 'dx2')})",
                    "PlannedAptNum": "IF(a.AptStatus = 6, a.AptNum, 0)",
                    "PlaceService": "0",
                    "Prosthesis": "''",
                    "ClaimNote": "''",
                    "DateEntryC": f"DATE({entered})",
                    "ClinicNum": "0",
                    "MedicalCode": "IF(s.seq % 4 = 0, NULL, '')",
                    "DiagnosticCode": "''",
                    "CodeNum": "c.CodeNum",
                    "CodeMod1": r.pick(["NULL", "''", "''"], "cm"),
                    "UnitQty": "1",
                    "DateTP": f"IF({r.chance(0.01, 'zt')}, '0000-00-00', {pdate} - INTERVAL FLOOR({r.u('tp')} * 30) DAY)",
                    "ProcTime": "IF(a.AptNum IS NULL, '00:00:00', TIME(a.AptDateTime))",
                    "ProcTimeEnd": "IF(a.AptNum IS NULL, '00:00:00', ADDTIME(TIME(a.AptDateTime), '00:45:00'))",
                    "DateTStamp": self.cursor(self.last_edit(entered, pdate), "lt"),
                    "DrugQty": "0",
                    "BillingNote": "''",
                    "SnomedBodySite": "''",
                    "SecUserNumEntry": self.user("lu"),
                    "SecDateEntry": entered,
                    "DateComplete": f"IF({status} = 2, {pdate}, '0001-01-01')",
                },
                f"FROM seq_1_to_{n} AS s\n"
                f"JOIN _map_proc AS c ON c.ProcNum = s.seq\n"
                f"LEFT JOIN appointment AS a ON s.seq <= {attached} AND a.AptNum = {apt_of}\n"
                f"LEFT JOIN fee AS f ON f.FeeNum = c.CodeNum AND c.CodeNum <= {STD_CODES}",
            ),
        ]

    # ------------------------------------------------------------------ claims
    def scalar(self, sql: str):
        self.cur.execute(sql)
        return self.cur.fetchone()[0]

    def claim(self):
        """Claims for completed appointments of insured patients (about as many as the scale asks for);
        recent claims are still unsent/held/waiting, older ones received."""
        r = self.r
        u = r.u("ce", "a.AptNum")
        eligible = self.scalar(
            "SELECT COUNT(*) FROM appointment a JOIN _map_patins m ON m.PatNum = a.PatNum "
            "WHERE a.AptStatus = 2"
        )
        frac = min(1.0, self.n["claim"] / max(1, eligible))
        k = "x.ClaimNum"
        old = r.pick(["'R'"] * 30 + ["'S'", "'W'"], "cs", k)
        new = r.pick(["'R'", "'R'", "'S'", "'S'", "'W'", "'U'", "'H'", "'I'"], "cs2", k)
        sent = f"IF(x.st IN ('U', 'H'), '0001-01-01', x.DateService + INTERVAL FLOOR({r.u('sd', k)} * 3) DAY)"
        received = (
            f"IF(x.st = 'R', LEAST(x.DateService + INTERVAL 14 + FLOOR({r.u('rd', k)} * 30) DAY, "
            f"DATE({self.NOW})), '0001-01-01')"
        )
        event = f"(GREATEST({sent}, {received}, x.DateService) + INTERVAL 17 HOUR)"
        return [
            (
                "CREATE TABLE `_map_claimapt` (AptNum BIGINT PRIMARY KEY, ClaimNum BIGINT, UNIQUE KEY (ClaimNum)) "
                "ENGINE=MyISAM"
            ),
            (
                "INSERT INTO `_map_claimapt` SELECT a.AptNum, ROW_NUMBER() OVER (ORDER BY a.AptNum) "
                "FROM appointment a JOIN _map_patins m ON m.PatNum = a.PatNum "
                f"WHERE a.AptStatus = 2 AND {u} < {frac}"
            ),
            self.insert(
                "claim",
                {
                    "ClaimNum": "x.ClaimNum",
                    "PatNum": "x.PatNum",
                    "DateService": "x.DateService",
                    "DateSent": sent,
                    "ClaimStatus": "x.st",
                    "DateReceived": received,
                    "PlanNum": "x.PlanNum",
                    "ProvTreat": "x.ProvNum",
                    "PreAuthString": "''",
                    "IsProsthesis": r.pick(["''", "'N'", "'I'"], "ip", k),
                    "PriorDate": "'0001-01-01'",
                    "ReasonUnderPaid": "''",
                    "ClaimNote": f"IF({r.chance(0.5, 'cn', k)}, NULL, IF({r.chance(0.8, 'cn2', k)}, '', "
                    f"{r.pick_str(texts.NOTES, 'cn3', k)}))",
                    "ClaimType": r.pick(["'P'"] * 12 + ["'S'", "'PreAuth'", "'Other'"], "ct", k),
                    "ProvBill": "x.ProvNum",
                    "ReferringProv": "0",
                    "RefNumString": "''",
                    "AccidentRelated": "''",
                    "AccidentST": "''",
                    "InsSubNum": "x.InsSubNum",
                    "CanadianMaterialsForwarded": "''",
                    "SecUserNumEntry": self.user("cu", k),
                    "SecDateEntry": "x.DateService",
                    "SecDateTEdit": self.cursor(event, "ctt", k),
                    "Narrative": "''",
                },
                "FROM (SELECT m.ClaimNum, a.PatNum, DATE(a.AptDateTime) AS DateService, a.ProvNum, "
                "pi.PlanNum, pi.InsSubNum, "
                f"IF(DATEDIFF({self.NOW}, a.AptDateTime) > 60, {old.replace('x.ClaimNum', 'm.ClaimNum')}, "
                f"{new.replace('x.ClaimNum', 'm.ClaimNum')}) AS st "
                "FROM _map_claimapt m JOIN appointment a ON a.AptNum = m.AptNum "
                "JOIN _map_patins pi ON pi.PatNum = a.PatNum) AS x",
            ),
        ]

    def claimpayment(self):
        r = self.r
        n = self.n["claimpayment"]
        d = f"DATE({self.START} + INTERVAL FLOOR((s.seq - 1) * {HISTORY_DAYS} / {n}) DAY)"
        return [
            self.insert(
                "claimpayment",
                {
                    "ClaimPaymentNum": "s.seq",
                    "CheckDate": d,
                    "CheckAmt": "0",
                    "CheckNum": f"IF({r.chance(0.3, 'pn')}, '', LPAD(s.seq * 97 % 1000000, 6, '0'))",
                    "BankBranch": "''",
                    "Note": f"IF({r.chance(0.5, 'pno')}, NULL, '')",
                    "ClinicNum": "0",
                    "DepositNum": "0",
                    "CarrierName": r.pick_str(texts.CARRIERS, "pc"),
                    "DateIssued": d,
                    "IsPartial": f"{r.chance(0.05, 'pp')}",
                    "PayType": self.defnum(32, "py"),
                    "SecUserNumEntry": self.user("pu"),
                    "SecDateEntry": d,
                    "SecDateTEdit": self.cursor(f"{d} + INTERVAL 15 HOUR", "pt"),
                    "PayGroup": "0",
                },
                self.seq("claimpayment"),
            )
        ]

    def claimproc(self):
        """Claim rows for completed procedures, estimates (Status 6, ClaimNum 0) for planned ones, and a
        few by-total supplemental payments (ProcNum 0); then claim and check totals are summed up."""
        r = self.r
        claims = self.scalar("SELECT COUNT(*) FROM claim")
        checks = self.n["claimpayment"]
        pct = "ELT(1 + p.CodeNum % 3, 1.0, 0.8, 0.5)"
        est = f"ROUND(p.ProcFee * {pct}, 2)"
        paid = f"IF(c.ClaimStatus = 'R', IF({r.chance(0.85, 'pd', 'p.ProcNum')}, {est}, ROUND({est} * 0.8, 2)), 0)"
        check = f"IF(c.ClaimStatus = 'R', FLOOR((c.ClaimNum - 1) * {checks} / {max(claims, 1)}) + 1, 0)"
        common = {
            "AllowedOverride": "-1",
            "Percentage": "-1",
            "PercentOverride": "-1",
            "CopayAmt": "-1",
            "PaidOtherIns": "-1",
            "CopayOverride": "-1",
            "DedEstOverride": "-1",
            "InsEstTotalOverride": "-1",
            "PaidOtherInsOverride": "-1",
            "WriteOffEstOverride": "-1",
            "ClinicNum": "0",
            "EstimateNote": "''",
            "ClaimAdjReasonCodes": "''",
            "SecurityHash": "''",
        }
        on_claims = self.insert(
            "claimproc",
            {
                "ProcNum": "p.ProcNum",
                "ClaimNum": "c.ClaimNum",
                "PatNum": "p.PatNum",
                "ProvNum": "p.ProvNum",
                "FeeBilled": "p.ProcFee",
                "InsPayEst": est,
                "DedApplied": "0",
                "Status": "IF(c.ClaimStatus = 'R', 1, 0)",
                "InsPayAmt": paid,
                "Remarks": f"IF({r.chance(0.7, 'rm', 'p.ProcNum')}, '', NULL)",
                "ClaimPaymentNum": check,
                "PlanNum": "c.PlanNum",
                "DateCP": "IF(c.ClaimStatus = 'R', c.DateReceived, c.DateService)",
                "WriteOff": "IF(c.ClaimStatus = 'R' AND p.CodeNum % 2 = 0, ROUND(p.ProcFee * 0.1, 2), 0)",
                "CodeSent": "''",
                "NoBillIns": "0",
                "BaseEst": est,
                "ProcDate": "p.ProcDate",
                "DateEntry": "c.SecDateEntry",
                "DedEst": "0",
                "InsEstTotal": est,
                "WriteOffEst": "-1",
                "InsSubNum": "c.InsSubNum",
                "SecUserNumEntry": "c.SecUserNumEntry",
                "SecDateEntry": "c.SecDateEntry",
                "SecDateTEdit": "c.SecDateTEdit",
                "DateInsFinalized": "IF(c.ClaimStatus = 'R', c.DateReceived, '0001-01-01')",
                **common,
            },
            "FROM procedurelog p JOIN _map_claimapt m ON m.AptNum = p.AptNum "
            "JOIN claim c ON c.ClaimNum = m.ClaimNum WHERE p.ProcStatus = 2 ORDER BY p.ProcNum",
        )
        estimates = self.insert(
            "claimproc",
            {
                "ProcNum": "p.ProcNum",
                "ClaimNum": "0",
                "PatNum": "p.PatNum",
                "ProvNum": "p.ProvNum",
                "FeeBilled": "0",
                "InsPayEst": est,
                "Status": "6",
                "InsPayAmt": "0",
                "Remarks": "''",
                "ClaimPaymentNum": "0",
                "PlanNum": "m.PlanNum",
                "DateCP": "p.ProcDate",
                "WriteOff": "0",
                "CodeSent": "''",
                "BaseEst": est,
                "ProcDate": "p.ProcDate",
                "DateEntry": "DATE(p.SecDateEntry)",
                "DedEst": "0",
                "InsEstTotal": est,
                "WriteOffEst": "-1",
                "InsSubNum": "m.InsSubNum",
                "SecUserNumEntry": "p.SecUserNumEntry",
                "SecDateEntry": "DATE(p.SecDateEntry)",
                "SecDateTEdit": "p.DateTStamp",
                **common,
            },
            "FROM procedurelog p JOIN _map_patins m ON m.PatNum = p.PatNum "
            f"WHERE p.ProcStatus = 1 AND {r.chance(0.7, 'es', 'p.ProcNum')} ORDER BY p.ProcNum",
        )
        by_total = self.insert(
            "claimproc",
            {
                "ProcNum": "0",
                "ClaimNum": "c.ClaimNum",
                "PatNum": "c.PatNum",
                "ProvNum": "c.ProvTreat",
                "FeeBilled": "0",
                "InsPayEst": "0",
                "Status": "1",
                "InsPayAmt": r.between(10, 60, "bt", "c.ClaimNum"),
                "Remarks": "'by total'",
                "ClaimPaymentNum": check,
                "PlanNum": "c.PlanNum",
                "DateCP": "c.DateReceived",
                "WriteOff": "0",
                "CodeSent": "''",
                "ProcDate": "c.DateService",
                "DateEntry": "c.DateReceived",
                "DedEst": "0",
                "InsEstTotal": "0",
                "WriteOffEst": "-1",
                "InsSubNum": "c.InsSubNum",
                "SecUserNumEntry": "c.SecUserNumEntry",
                "SecDateEntry": "c.DateReceived",
                "SecDateTEdit": "c.SecDateTEdit",
                "DateInsFinalized": "c.DateReceived",
                **common,
            },
            f"FROM claim c WHERE c.ClaimStatus = 'R' AND {r.chance(0.03, 'bt2', 'c.ClaimNum')} ORDER BY c.ClaimNum",
        )
        return [
            on_claims,
            estimates,
            by_total,
            (
                "UPDATE claim c JOIN (SELECT ClaimNum, SUM(FeeBilled) fee, SUM(InsPayEst) est, SUM(InsPayAmt) paid, "
                "SUM(WriteOff) wo, SUM(DedApplied) ded FROM claimproc WHERE ClaimNum > 0 GROUP BY ClaimNum) x "
                "ON x.ClaimNum = c.ClaimNum SET c.ClaimFee = x.fee, c.InsPayEst = x.est, c.InsPayAmt = x.paid, "
                "c.WriteOff = x.wo, c.DedApplied = x.ded, c.SecDateTEdit = c.SecDateTEdit"
            ),
            (
                "UPDATE claimpayment cp JOIN (SELECT ClaimPaymentNum, SUM(InsPayAmt) amt, MAX(DateCP) d "
                "FROM claimproc WHERE ClaimPaymentNum > 0 GROUP BY ClaimPaymentNum) x "
                "ON x.ClaimPaymentNum = cp.ClaimPaymentNum SET cp.CheckAmt = x.amt, cp.CheckDate = x.d, "
                f"cp.DateIssued = x.d, cp.SecDateEntry = x.d, cp.SecDateTEdit = LEAST(x.d + INTERVAL 18 HOUR, {self.LAST})"
            ),
        ]

    # ------------------------------------------------------------------ patient money
    def anchor_proc(self, table: str, key: str) -> str:
        """Payments are spread evenly over procedures (so each belongs to a real patient and visit)."""
        return f"FLOOR(({key} - 1) * {self.n['procedurelog']} / {self.n[table]}) + 1"

    def payment(self):
        r = self.r
        # paid within 20 days of the procedure and by today: a recent procedure's payment falls between it
        # and today, a scheduled one's was a prepayment in the last 20 days (clamping both to today piled
        # the payments of every scheduled procedure into one day)
        today, delay = f"DATE({self.NOW})", r.u("yd")
        days_since = f"LEAST(20, DATEDIFF({today}, p.ProcDate))"
        pay_date = (
            f"IF(p.ProcDate > {today}, {today} - INTERVAL FLOOR({delay} * 20) DAY, "
            f"p.ProcDate + INTERVAL FLOOR({delay} * ({days_since} + 1)) DAY)"
        )
        event = f"({pay_date} + INTERVAL (32400 + FLOOR({r.u('ys')} * 28800)) SECOND)"
        return [
            self.insert(
                "payment",
                {
                    "PayNum": "s.seq",
                    "PayType": f"IF({r.chance(0.04, 'yt')}, 0, {self.defnum(10, 'yt2')})",
                    "PayDate": pay_date,
                    "PayAmt": "0",
                    "CheckNum": r.pick(["''", "''", "NULL", "LPAD(s.seq % 9999, 4, '0')"], "yc"),
                    "BankBranch": "''",
                    "PayNote": self.text("yn"),
                    "IsSplit": "1",
                    "PatNum": "p.PatNum",
                    "ClinicNum": "0",
                    "DateEntry": pay_date,
                    "DepositNum": "0",
                    "Receipt": "''",
                    "IsRecurringCC": f"{r.chance(0.03, 'yr')}",
                    "SecUserNumEntry": self.user("yu"),
                    "SecDateTEdit": self.cursor(event, "ytt"),
                    "ExternalId": "''",
                    "MerchantFee": "0",
                },
                f"FROM seq_1_to_{self.n['payment']} AS s JOIN procedurelog p ON p.ProcNum = "
                f"{self.anchor_proc('payment', 's.seq')}",
            )
        ]

    def paysplit(self):
        """Splits are spread evenly over payments; an income transfer (PayType 0) gets +/- splits whose
        last one makes them sum to 0; then every PayAmt is set to the sum of its splits."""
        r = self.r
        amt = r.between(5, 155, "sa")
        proc = f"IF(p.ProcStatus = 2 AND {r.chance(0.7, 'sp')}, p.ProcNum, 0)"
        return [
            self.insert(
                "paysplit",
                {
                    "SplitNum": "s.seq",
                    "SplitAmt": f"IF(y.PayType = 0, IF(s.seq % 2 = 0, {amt}, -{amt}), {amt})",
                    "PatNum": "y.PatNum",
                    "ProcDate": f"IF({proc} > 0, p.ProcDate, y.PayDate)",
                    "PayNum": "y.PayNum",
                    "ProvNum": "p.ProvNum",
                    "PayPlanNum": "0",
                    "DatePay": "y.PayDate",
                    "ProcNum": proc,
                    "DateEntry": "y.DateEntry",
                    "UnearnedType": f"IF({proc} = 0 AND p.ProcStatus <> 2 AND y.PayType <> 0, {self.defnum(29, 'su')}, 0)",
                    "ClinicNum": "0",
                    "SecUserNumEntry": "y.SecUserNumEntry",
                    "SecDateTEdit": "y.SecDateTEdit",
                    "SecurityHash": "''",
                },
                f"FROM seq_1_to_{self.n['paysplit']} AS s "
                f"JOIN payment y ON y.PayNum = FLOOR((s.seq - 1) * {self.n['payment']} / {self.n['paysplit']}) + 1 "
                f"JOIN procedurelog p ON p.ProcNum = {self.anchor_proc('payment', 'y.PayNum')}",
            ),
            (
                "UPDATE paysplit ps JOIN (SELECT ps2.PayNum, MAX(ps2.SplitNum) AS last, SUM(ps2.SplitAmt) AS tot "
                "FROM paysplit ps2 JOIN payment y ON y.PayNum = ps2.PayNum WHERE y.PayType = 0 GROUP BY ps2.PayNum) x "
                "ON ps.SplitNum = x.last SET ps.SplitAmt = ROUND(ps.SplitAmt - x.tot, 2), ps.SecDateTEdit = ps.SecDateTEdit"
            ),
            (
                "UPDATE payment y JOIN (SELECT PayNum, SUM(SplitAmt) AS tot FROM paysplit GROUP BY PayNum) x "
                "ON x.PayNum = y.PayNum SET y.PayAmt = IF(y.PayType = 0, 0, ROUND(x.tot, 2)), y.SecDateTEdit = y.SecDateTEdit"
            ),
        ]

    def adjustment(self):
        r = self.r
        d = f"LEAST(p.ProcDate, DATE({self.NOW}))"
        return [
            self.insert(
                "adjustment",
                {
                    "AdjNum": "s.seq",
                    "AdjDate": d,
                    "AdjAmt": f"IF({r.chance(0.8, 'js')}, -{r.between(5, 85, 'ja')}, {r.between(5, 45, 'jb')})",
                    "PatNum": "p.PatNum",
                    "AdjType": self.defnum(1, "jt"),
                    "ProvNum": "p.ProvNum",
                    "AdjNote": self.note("jn"),
                    "ProcDate": d,
                    "ProcNum": f"IF(p.ProcStatus = 2 AND {r.chance(0.5, 'jp2')}, p.ProcNum, 0)",
                    "DateEntry": d,
                    "ClinicNum": "0",
                    "StatementNum": "0",
                    "SecUserNumEntry": self.user("ju"),
                    "SecDateTEdit": self.cursor(f"{d} + INTERVAL 13 HOUR", "jtt"),
                },
                f"FROM seq_1_to_{self.n['adjustment']} AS s JOIN procedurelog p ON p.ProcNum = "
                f"{r.int(self.n['procedurelog'], 'jp')}",
            )
        ]

    def payplan(self):
        head = f"IF({self.n['patient']} >= 5, s.seq * 4 - 3, 1)"
        return [
            self.insert(
                "payplan",
                {
                    "PayPlanNum": "s.seq",
                    "PatNum": head,
                    "Guarantor": head,
                    "PayPlanDate": f"DATE({self.NOW} - INTERVAL 200 * s.seq DAY)",
                    "APR": "IF(s.seq = 1, 0, 5.5)",
                    "Note": "IF(s.seq = 1, NULL, 'Plan agreed\r\nsigned copy scanned')",
                    "PlanNum": "0",
                    "CompletedAmt": "1200",
                    "InsSubNum": "0",
                    "PaySchedule": "0",
                    "NumberOfPayments": "12",
                    "PayAmt": "100",
                    "DownPayment": "0",
                    "Signature": "''",
                    "PlanCategory": "0",
                    "DatePayPlanStart": f"DATE({self.NOW} - INTERVAL 200 * s.seq DAY)",
                    "SecurityHash": "''",
                },
                self.seq("payplan"),
            )
        ]

    def payplancharge(self):
        created = "(pp.PayPlanDate + INTERVAL 10 HOUR)"
        return [
            self.insert(
                "payplancharge",
                {
                    "PayPlanChargeNum": "s.seq",
                    "PayPlanNum": "pp.PayPlanNum",
                    "Guarantor": "pp.Guarantor",
                    "PatNum": "pp.PatNum",
                    "ChargeDate": "pp.PayPlanDate + INTERVAL (s.seq DIV 2) MONTH",
                    "Principal": "100",
                    "Interest": "IF(pp.APR > 0, 0.46, 0)",
                    "Note": "IF(s.seq % 5 = 0, NULL, '')",
                    "ProvNum": "1",
                    "ClinicNum": "0",
                    "ChargeType": "0",
                    "ProcNum": "0",
                    "SecDateTEntry": created,
                    "SecDateTEdit": created,
                    "StatementNum": "0",
                    "FKey": "0",
                    "LinkType": "0",
                },
                f"FROM seq_1_to_{self.n['payplancharge']} AS s JOIN payplan pp ON pp.PayPlanNum = 1 + s.seq % 2",
            )
        ]

    def statement(self):
        r = self.r
        d = f"DATE({self.day(r.u('td'))})"
        mode = r.pick(["0", "0", "1", "2", "2", "3"], "tm")
        return [
            self.insert(
                "statement",
                {
                    "StatementNum": "s.seq",
                    "PatNum": "p.Guarantor",
                    "DateSent": f"IF({r.chance(0.005, 'tz')}, '0000-00-00', {d})",
                    "DateRangeFrom": f"IF({r.chance(0.01, 'tz2')}, '0000-00-00', {d} - INTERVAL 90 DAY)",
                    "DateRangeTo": f"IF({r.chance(0.005, 'tz3')}, '0000-00-00', {d})",
                    "Note": self.note("tn"),
                    "NoteBold": self.note("tb", p_null=0.5, p_empty=0.45),
                    "Mode_": mode,
                    "HidePayment": "0",
                    "SinglePatient": f"{r.chance(0.1, 'ts')}",
                    "Intermingled": "0",
                    "IsSent": f"{r.chance(0.9, 'ti')}",
                    "DocNum": "0",
                    "DateTStamp": self.cursor(f"{d} + INTERVAL 11 HOUR", "tt"),
                    "EmailSubject": f"IF({mode} = 2, 'Your account statement', '')",
                    "EmailBody": f"IF({mode} = 2, CONCAT('Dear patient,\r\n\r\nPlease find your statement attached.\r\n', "
                    f"REPEAT('Thank you for choosing our practice. ', 40)), '')",
                    "SuperFamily": "0",
                    "IsBalValid": "1",
                    "BalTotal": self.money(0, 900, "tbal"),
                    "StatementType": r.pick_str(["NotSet", "NotSet", "NotSet", "LimitedStatement"], "ty"),
                    "ShortGUID": "''",
                    "StatementShortURL": "''",
                    "StatementURL": "''",
                },
                f"FROM seq_1_to_{self.n['statement']} AS s JOIN patient p ON p.PatNum = {self.patient('tp')}",
            )
        ]

    # ------------------------------------------------------------------ clinical extras
    def treatplan(self):
        r = self.r
        d = f"LEAST(p.ProcDate, DATE({self.NOW}))"
        return [
            self.insert(
                "treatplan",
                {
                    "TreatPlanNum": "s.seq",
                    "PatNum": "p.PatNum",
                    "DateTP": d,
                    "Heading": r.pick_str(
                        ["Active Treatment Plan", "Saved plan", "Inactive Treatment Plan", ""], "xh"
                    ),
                    "Note": self.note("xn"),
                    "Signature": "IF(s.seq % 2 = 0, NULL, '')",
                    "SigIsTopaz": "0",
                    "ResponsParty": "0",
                    "DocNum": "0",
                    "TPStatus": r.pick(["0", "0", "1", "2"], "xs"),
                    "SecUserNumEntry": self.user("xu"),
                    "SecDateEntry": d,
                    "SecDateTEdit": self.cursor(f"{d} + INTERVAL 14 HOUR", "xt"),
                    "UserNumPresenter": "0",
                    "SignaturePractice": "''",
                    "SignatureText": "''",
                    "SignaturePracticeText": "''",
                },
                f"FROM seq_1_to_{self.n['treatplan']} AS s JOIN procedurelog p ON p.ProcNum = "
                f"{r.int(self.n['procedurelog'], 'ta')}",
            )
        ]

    def proctp(self):
        r = self.r
        return [
            self.insert(
                "proctp",
                {
                    "ProcTPNum": "s.seq",
                    "TreatPlanNum": "t.TreatPlanNum",
                    "PatNum": "t.PatNum",
                    "ProcNumOrig": "p.ProcNum",
                    "ItemOrder": "s.seq % 20",
                    "Priority": "0",
                    "ToothNumTP": "COALESCE(p.ToothNum, '')",
                    "Surf": "COALESCE(p.Surf, '')",
                    "ProcCode": "c.ProcCode",
                    "Descript": "c.Descript",
                    "FeeAmt": "p.ProcFee",
                    "PriInsAmt": "ROUND(p.ProcFee * 0.5, 2)",
                    "SecInsAmt": "0",
                    "PatAmt": "p.ProcFee - ROUND(p.ProcFee * 0.5, 2)",
                    "Discount": "0",
                    "Prognosis": "''",
                    "Dx": "''",
                    "ProcAbbr": "COALESCE(c.AbbrDesc, '')",
                    "SecUserNumEntry": "t.SecUserNumEntry",
                    "SecDateEntry": "t.SecDateEntry",
                    "SecDateTEdit": "t.SecDateTEdit",
                    "ProvNum": "p.ProvNum",
                    "DateTP": "t.DateTP",
                    "ClinicNum": "0",
                },
                f"FROM seq_1_to_{self.n['proctp']} AS s JOIN treatplan t ON t.TreatPlanNum = "
                f"{r.int(self.n['treatplan'], 'pt')} "
                f"JOIN procedurelog p ON p.ProcNum = {r.int(self.n['procedurelog'], 'ta', 't.TreatPlanNum')} "
                "JOIN procedurecode c ON c.CodeNum = p.CodeNum",
            )
        ]

    def recall(self):
        r = self.r
        n_pat = self.n["patient"]
        prev = f"DATE({self.day(r.u('rp'))})"
        return [
            self.insert(
                "recall",
                {
                    "RecallNum": "s.seq",
                    "PatNum": f"(s.seq - 1) % {n_pat} + 1",
                    "DateDueCalc": f"{prev} + INTERVAL 6 MONTH",
                    "DateDue": f"IF({r.chance(0.1, 'rd')}, '0001-01-01', {prev} + INTERVAL 6 MONTH)",
                    "DatePrevious": f"IF({r.chance(0.1, 'rv')}, '0001-01-01', {prev})",
                    "RecallInterval": "393216",
                    "RecallStatus": f"IF({r.chance(0.8, 'rs')}, 0, {self.defnum(13, 'rs2')})",
                    "Note": self.note("rn"),
                    "IsDisabled": f"{r.chance(0.03, 'ri')}",
                    "DateTStamp": self.cursor(f"{prev} + INTERVAL 16 HOUR", "rt"),
                    "RecallTypeNum": f"1 + ((s.seq - 1) DIV {n_pat}) % 10",
                    "DisableUntilBalance": "0",
                    "TimePatternOverride": "''",
                },
                self.seq("recall"),
            )
        ]

    def commlog(self):
        """Time grows with CommlogNum; automated reminders (UserNum 0) all carry 09:00:00 of their day,
        so thousands of rows share one second."""
        r = self.r
        n = self.n["commlog"]
        t = f"({self.START} + INTERVAL FLOOR((s.seq - 1) * {HISTORY_DAYS * 86400} / {n}) SECOND)"
        auto = r.chance(0.5, "ga")
        when = f"IF({auto}, LEAST(DATE({t}) + INTERVAL 9 HOUR, {self.LAST}), {t})"
        return [
            self.insert(
                "commlog",
                {
                    "CommlogNum": "s.seq",
                    "PatNum": self.patient("gp"),
                    "CommDateTime": when,
                    "CommType": self.defnum(27, "gt"),
                    "Note": self.note("gn", p_null=0.1, p_empty=0.2),
                    "Mode_": f"IF({auto}, 5, {r.pick(['0', '1', '2', '3', '3', '3', '4', '8'], 'gm')})",
                    "SentOrReceived": r.pick(["0", "1", "1", "2"], "gs"),
                    "UserNum": f"IF({auto}, 0, {self.user('gu')})",
                    "Signature": "''",
                    "SigIsTopaz": "0",
                    "DateTStamp": f"IF({auto}, {when}, {self.cursor(when, 'gtt')})",
                    "DateTimeEnd": f"IF({r.chance(0.7, 'ge')}, '0001-01-01 00:00:00', {when} + INTERVAL 5 MINUTE)",
                    "CommSource": f"IF({r.chance(0.3, 'gc')}, NULL, IF({auto}, 1, 0))",
                    "ProgramNum": "0",
                    "DateTEntry": when,
                    "ReferralNum": "0",
                },
                self.seq("commlog"),
            )
        ]

    def document(self):
        """A few documents carry their image in RawBase64 (tens of KB); the rest point to files."""
        r = self.r
        d = self.day(r.u("dd"))
        big = (
            f"TO_BASE64(REPEAT(UNHEX(SHA2(CONCAT({self.seed}, 'img', s.seq), 256)), "
            f"300 + FLOOR({r.u('db2')} * 1200)))"
        )
        return [
            self.insert(
                "document",
                {
                    "DocNum": "s.seq",
                    "Description": r.pick_str(["Xray", "Insurance card", "Consent form", "Photo", ""], "ds"),
                    "DateCreated": f"IF({r.chance(0.005, 'dz')}, '0000-00-00 00:00:00', {d} + INTERVAL 10 HOUR)",
                    "DocCategory": self.defnum(18, "dc"),
                    "PatNum": self.patient("dp"),
                    "FileName": f"CONCAT('IMG', s.seq, {r.pick_str(['.jpg', '.jpg', '.pdf', '.png'], 'df')})",
                    "ImgType": r.pick(["0", "1", "1", "2", "3"], "di"),
                    "IsFlipped": "0",
                    "DegreesRotated": r.pick(["0", "0", "0", "90", "180"], "dr"),
                    "ToothNumbers": r.pick(["''", "''", "NULL", "'3'", "'14,15'"], "dt"),
                    "Note": self.text("dn", p_empty=0.8),
                    "SigIsTopaz": "0",
                    "Signature": "IF(s.seq % 3 = 0, NULL, '')",
                    "DateTStamp": self.cursor(f"{d} + INTERVAL 10 HOUR", "dtt"),
                    "RawBase64": f"IF({r.chance(0.003, 'db')}, {big}, '')",
                    "Thumbnail": f"IF({r.chance(0.1, 'dh')}, TO_BASE64(UNHEX(SHA2(CONCAT('th', s.seq), 512))), '')",
                    "ExternalGUID": "''",
                    "ExternalSource": r.pick_str(["None", "None", "None", "Dexis"], "de"),
                    "ProvNum": "0",
                    "OcrResponseData": "''",
                    "ImageCaptureType": "0",
                    "ChartLetterHash": "''",
                },
                self.seq("document"),
            )
        ]

    def schedule(self):
        r = self.r
        n = self.n["schedule"]
        d = f"DATE({self.START} + INTERVAL FLOOR((s.seq - 1) * {HISTORY_DAYS + 60} / {n}) DAY)"
        kind = r.pick(["1", "1", "1", "1", "2", "0", "3"], "ht")
        return [
            self.insert(
                "schedule",
                {
                    "ScheduleNum": "s.seq",
                    "SchedDate": d,
                    "StartTime": r.pick(["'07:00:00'", "'08:00:00'", "'08:00:00'", "'13:00:00'"], "hs"),
                    "StopTime": r.pick(["'12:00:00'", "'17:00:00'", "'17:00:00'", "'17:30:00'"], "he"),
                    "SchedType": kind,
                    "ProvNum": f"IF({kind} = 1, {r.int(18, 'hp')}, 0)",
                    "BlockoutType": f"IF({kind} = 2, {self.defnum(25, 'hb')}, 0)",
                    "Note": self.note("hn", p_null=0.5, p_empty=0.4),
                    "Status": f"IF({kind} = 0, 2, 0)",
                    "EmployeeNum": "0",
                    "DateTStamp": self.cursor(f"LEAST({d} - INTERVAL 20 DAY, {self.LAST})", "htt"),
                    "ClinicNum": "0",
                },
                self.seq("schedule"),
            )
        ]

    def securitylog(self):
        """Append-only audit rows, time growing with the PK; 30% are logged at a whole minute (bursts)."""
        r = self.r
        n = self.n["securitylog"]
        t = f"({self.START} + INTERVAL FLOOR((s.seq - 1) * {HISTORY_DAYS * 86400} / {n}) SECOND)"
        when = f"IF({r.chance(0.3, 'lb')}, {t} - INTERVAL SECOND({t}) SECOND, {t})"
        idx = r.int(len(texts.PERM_TYPES), "lp")
        perms = ", ".join(str(p[0]) for p in texts.PERM_TYPES)
        words = ", ".join(sql_str(p[1]) for p in texts.PERM_TYPES)
        pat = f"IF({r.chance(0.2, 'lq')}, 0, {self.patient('lq2')})"
        return [
            self.insert(
                "securitylog",
                {
                    "SecurityLogNum": "s.seq",
                    "PermType": f"ELT({idx}, {perms})",
                    "UserNum": f"IF({r.chance(0.05, 'lu')}, 0, {self.user('lu2')})",
                    "LogDateTime": when,
                    "LogText": f"IF({r.chance(0.01, 'ln')}, NULL, CONCAT(ELT({idx}, {words}), ' from ', "
                    f"{r.pick_str(['Chart', 'Account', 'Appts', 'Family', 'Imaging'], 'lm')}))",
                    "PatNum": pat,
                    "CompName": f"CONCAT('FRONTDESK', {r.int(6, 'lc')})",
                    "FKey": f"IF(ELT({idx}, {perms}) = 30, {r.int(self.n['procedurelog'], 'lk')}, 0)",
                    "LogSource": "0",
                    "DefNum": "0",
                    "DefNumError": "0",
                },
                self.seq("securitylog"),
            )
        ]


BUILD_ORDER = (
    "definition",
    "provider",
    "operatory",
    "userod",
    "clinic",
    "recalltype",
    "procedurecode",
    "feesched",
    "fee",
    "employer",
    "carrier",
    "patient",
    "referral",
    "refattach",
    "insplan",
    "inssub",
    "patplan",
    "appointment",
    "histappointment",
    "procedurelog",
    "claim",
    "claimpayment",
    "claimproc",
    "payment",
    "paysplit",
    "adjustment",
    "payplan",
    "payplancharge",
    "statement",
    "treatplan",
    "proctp",
    "recall",
    "commlog",
    "document",
    "schedule",
    "securitylog",
)
