"""The "aging run": one UPDATE over the patient table that rewrites the family balance columns
(Bal_0_30, Bal_31_60, Bal_61_90, BalOver90, BalTotal, InsEst) on guarantor rows, as OpenDental's
nightly aging does. Charges are completed procedures and positive adjustments; credits are paysplits,
insurance payments/write-offs and negative adjustments, applied to the oldest bucket first.

DateTStamp is left to MariaDB's ON UPDATE: only rows whose balances actually change get a new value,
which is the session's pinned `timestamp` (the simulated clock), so the run stays deterministic.
"""

from __future__ import annotations

from datetime import date


def aging_sql(as_of: date) -> str:
    d = f"'{as_of.isoformat()}'"
    age = f"DATEDIFF({d}, x.dt)"
    charges = (
        "SELECT PatNum, ProcDate AS dt, ProcFee AS amt FROM procedurelog WHERE ProcStatus = 2 "
        "UNION ALL SELECT PatNum, AdjDate, AdjAmt FROM adjustment WHERE AdjAmt > 0"
    )
    credits = (
        "SELECT PatNum, SplitAmt AS amt, 0 AS est FROM paysplit "
        "UNION ALL SELECT PatNum, InsPayAmt + WriteOff, 0 FROM claimproc WHERE Status IN (1, 4) "
        "UNION ALL SELECT PatNum, 0, InsPayEst FROM claimproc WHERE Status = 0 "
        "UNION ALL SELECT PatNum, -AdjAmt, 0 FROM adjustment WHERE AdjAmt < 0"
    )
    per_patient = (
        f"SELECT PatNum, SUM(IF({age} > 90, amt, 0)) AS c90, SUM(IF({age} BETWEEN 61 AND 90, amt, 0)) AS c61, "
        f"SUM(IF({age} BETWEEN 31 AND 60, amt, 0)) AS c31, SUM(IF({age} <= 30, amt, 0)) AS c0, "
        f"0 AS cr, 0 AS est FROM ({charges}) x GROUP BY PatNum "
        f"UNION ALL SELECT PatNum, 0, 0, 0, 0, SUM(amt), SUM(est) FROM ({credits}) y GROUP BY PatNum"
    )
    family = (
        "SELECT p.Guarantor AS G, SUM(t.c90) c90, SUM(t.c61) c61, SUM(t.c31) c31, SUM(t.c0) c0, "
        f"SUM(t.cr) cr, SUM(t.est) est FROM ({per_patient}) t JOIN patient p ON p.PatNum = t.PatNum "
        "GROUP BY p.Guarantor"
    )
    # credits eat the oldest bucket first: r1/r2/r3 are what is left after each bucket
    buckets = (
        "SELECT G, est, GREATEST(c90 - cr, 0) o90, GREATEST(c61 - GREATEST(cr - c90, 0), 0) o61, "
        "GREATEST(c31 - GREATEST(cr - c90 - c61, 0), 0) o31, "
        "c0 - GREATEST(cr - c90 - c61 - c31, 0) o0 "
        f"FROM ({family}) f"
    )
    return (
        f"UPDATE patient g JOIN ({buckets}) b ON b.G = g.PatNum SET "
        "g.BalOver90 = ROUND(b.o90, 2), g.Bal_61_90 = ROUND(b.o61, 2), g.Bal_31_60 = ROUND(b.o31, 2), "
        "g.Bal_0_30 = ROUND(b.o0, 2), g.BalTotal = ROUND(b.o90 + b.o61 + b.o31 + b.o0, 2), "
        "g.InsEst = ROUND(b.est, 2)"
    )
