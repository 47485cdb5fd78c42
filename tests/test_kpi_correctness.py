"""Acceptance tests of the marts: every headline KPI recomputed from the OpenDental source (MariaDB)
with plain, independent SQL (and, for the FIFO aging, plain Python), compared to the cent and to the row.

Nothing here reads the dbt models' SQL: the expected figures come straight from the source tables,
following the definitions in dbt_dental_models/models/kpi_definitions.md.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest

pytest_plugins = ["dbt_support"]

NO_DATE = "'1900-01-01'"  # OpenDental's 'no date' sentinels are on or before this day


def cents(value) -> Decimal:
    """Money as an exact Decimal to the cent (None -> 0)."""
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def by_key(rows, key_len=2):
    """{key tuple: tuple of values} from rows, money normalised to cents."""
    out = {}
    for row in rows:
        key = tuple(row[:key_len])
        out[key] = tuple(cents(v) if isinstance(v, (float, Decimal)) else v for v in row[key_len:])
    return out


def assert_same_table(expected: dict, actual: dict, what: str) -> None:
    assert expected, f"{what}: the source has no rows, the comparison would prove nothing"
    missing = sorted(set(expected) - set(actual), key=str)[:5]
    extra = sorted(set(actual) - set(expected), key=str)[:5]
    assert not missing and not extra, f"{what}: keys missing in the mart {missing}, unexpected {extra}"
    wrong = [(k, expected[k], actual[k]) for k in expected if expected[k] != actual[k]]
    assert not wrong, f"{what}: {len(wrong)} rows differ, e.g. {wrong[:3]}"


def test_as_of_date_is_the_latest_financial_activity(marts):
    (latest,) = marts.mysql(f"""
        SELECT MAX(d) FROM (
            SELECT MAX(ProcDate) AS d FROM procedurelog WHERE ProcStatus = 2 AND ProcDate > {NO_DATE}
            UNION ALL SELECT MAX(AdjDate) FROM adjustment WHERE AdjDate > {NO_DATE}
            UNION ALL SELECT MAX(DatePay) FROM paysplit WHERE DatePay > {NO_DATE}
            UNION ALL SELECT MAX(DateCP) FROM claimproc
                WHERE Status IN (1, 4) AND InsPayAmt <> 0 AND DateCP > {NO_DATE}
            UNION ALL SELECT MAX(ProcDate) FROM claimproc
                WHERE Status IN (0, 1, 4) AND ClaimNum <> 0 AND WriteOff <> 0 AND ProcDate > {NO_DATE}
        ) AS activity""")[0]
    assert marts.as_of_date == latest
    assert {r[0] for r in marts.pg("select distinct as_of_date from marts.fct_ar_aging")} == {latest}


def test_daily_production_per_provider_matches_source(marts):
    gross = marts.mysql(f"""
        SELECT ProcDate, NULLIF(ProvNum, 0), SUM(CAST(ProcFee * (UnitQty + BaseUnits) AS DECIMAL(14, 2))),
               COUNT(*)
        FROM procedurelog WHERE ProcStatus = 2 AND ProcDate > {NO_DATE} GROUP BY 1, 2""")
    write_offs = marts.mysql(f"""
        SELECT ProcDate, NULLIF(ProvNum, 0), SUM(CAST(WriteOff AS DECIMAL(14, 2)))
        FROM claimproc
        WHERE Status IN (0, 1, 4) AND ClaimNum <> 0 AND WriteOff <> 0 AND ProcDate > {NO_DATE}
        GROUP BY 1, 2""")
    adjustments = marts.mysql(f"""
        SELECT AdjDate, NULLIF(ProvNum, 0), SUM(CAST(AdjAmt AS DECIMAL(14, 2)))
        FROM adjustment WHERE AdjDate > {NO_DATE} GROUP BY 1, 2""")
    expected = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0), 0])
    for day, prov, amount, n in gross:
        expected[(day, prov)][0] += cents(amount)
        expected[(day, prov)][3] += n
    for day, prov, amount in write_offs:
        expected[(day, prov)][1] += cents(amount)
    for day, prov, amount in adjustments:
        expected[(day, prov)][2] += cents(amount)
    expected = {k: (g, w, a, g + a - w, n) for k, (g, w, a, n) in expected.items()}

    actual = by_key(
        marts.pg("""
        select production_date, provider_id, gross_production, write_offs, adjustments, net_production,
               completed_procedures
        from marts.fct_daily_production""")
    )
    assert_same_table(expected, actual, "fct_daily_production")
    assert sum(v[1] for v in expected.values()) > 0, "no write-offs in the data: the test would be weak"


@pytest.mark.parametrize("pick", [0, 1, 2])
def test_production_on_a_busy_day_for_one_provider(marts, pick):
    """Spot checks, spelled out: the busiest provider-days, one provider at a time."""
    day, prov, _ = marts.mysql(
        f"""
        SELECT ProcDate, ProvNum, COUNT(*) FROM procedurelog
        WHERE ProcStatus = 2 AND ProcDate > {NO_DATE}
        GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1 OFFSET %s""",
        (pick * 7,),
    )[0]
    (gross,) = marts.mysql(
        """
        SELECT COALESCE(SUM(CAST(ProcFee * (UnitQty + BaseUnits) AS DECIMAL(14, 2))), 0) FROM procedurelog
        WHERE ProcStatus = 2 AND ProcDate = %s AND ProvNum = %s""",
        (day, prov),
    )[0]
    rows = marts.pg(
        """select gross_production from marts.fct_daily_production
                       where production_date = %s and provider_id = %s""",
        (day, prov),
    )
    assert rows == [(cents(gross),)]


def test_daily_collections_match_source(marts):
    patient = marts.mysql(f"""
        SELECT ps.DatePay, NULLIF(ps.ProvNum, 0), SUM(CAST(ps.SplitAmt AS DECIMAL(14, 2)))
        FROM paysplit ps LEFT JOIN payment p ON p.PayNum = ps.PayNum
        WHERE ps.DatePay > {NO_DATE} AND COALESCE(p.PayType, -1) <> 0
        GROUP BY 1, 2""")
    insurance = marts.mysql(f"""
        SELECT DateCP, NULLIF(ProvNum, 0), SUM(CAST(InsPayAmt AS DECIMAL(14, 2)))
        FROM claimproc WHERE Status IN (1, 4) AND InsPayAmt <> 0 AND DateCP > {NO_DATE}
        GROUP BY 1, 2""")
    transfer_days = {
        (d, p)
        for d, p, _ in marts.mysql(f"""
        SELECT ps.DatePay, NULLIF(ps.ProvNum, 0), 1 FROM paysplit ps JOIN payment p ON p.PayNum = ps.PayNum
        WHERE p.PayType = 0 AND ps.DatePay > {NO_DATE}""")
    }
    expected = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for day, prov, amount in patient:
        expected[(day, prov)][0] += cents(amount)
    for day, prov, amount in insurance:
        expected[(day, prov)][1] += cents(amount)
    expected = {k: (p, i, p + i) for k, (p, i) in expected.items()}
    actual = by_key(
        marts.pg("""
        select collection_date, provider_id, patient_collections, insurance_collections, total_collections
        from marts.fct_daily_collections""")
    )
    assert_same_table(expected, actual, "fct_daily_collections")
    assert transfer_days, "no income transfers in the data: their exclusion is untested"


def _fifo_aging(charges: list[tuple[date, Decimal]], credits: Decimal, as_of: date) -> tuple:
    """Credits pay the oldest charges first; the rest of each charge is aged by its date."""
    buckets = [Decimal(0)] * 4
    left = credits
    for day, amount in sorted(charges):
        paid = min(amount, max(left, Decimal(0)))
        left -= paid
        age = (as_of - day).days
        buckets[0 if age <= 30 else 1 if age <= 60 else 2 if age <= 90 else 3] += amount - paid
    total_charges = sum((a for _, a in charges), Decimal(0))
    balance = total_charges - credits
    if balance < 0:
        buckets[0] += balance
    return (balance, *buckets)


def test_ar_aging_per_guarantor_matches_source(marts):
    as_of = marts.as_of_date
    guarantor_of = dict(
        marts.mysql("""
        SELECT p.PatNum, COALESCE(g.PatNum, p.PatNum) FROM patient p LEFT JOIN patient g ON g.PatNum = p.Guarantor
        """)
    )
    ledger = marts.mysql(
        f"""
        SELECT PatNum, ProcDate, CAST(ProcFee * (UnitQty + BaseUnits) AS DECIMAL(14, 2)) FROM procedurelog
            WHERE ProcStatus = 2 AND ProcDate > {NO_DATE} AND ProcDate <= %(as_of)s
        UNION ALL SELECT PatNum, AdjDate, CAST(AdjAmt AS DECIMAL(14, 2)) FROM adjustment
            WHERE AdjDate > {NO_DATE} AND AdjDate <= %(as_of)s
        UNION ALL SELECT PatNum, DatePay, -CAST(SplitAmt AS DECIMAL(14, 2)) FROM paysplit
            WHERE DatePay > {NO_DATE} AND DatePay <= %(as_of)s
        UNION ALL SELECT PatNum, DateCP, -CAST(InsPayAmt AS DECIMAL(14, 2)) FROM claimproc
            WHERE Status IN (1, 4) AND DateCP > {NO_DATE} AND DateCP <= %(as_of)s
        UNION ALL SELECT PatNum, ProcDate, -CAST(WriteOff AS DECIMAL(14, 2)) FROM claimproc
            WHERE Status IN (0, 1, 4) AND ClaimNum <> 0 AND ProcDate > {NO_DATE} AND ProcDate <= %(as_of)s
        """,
        {"as_of": as_of},
    )
    charges, credits = defaultdict(list), defaultdict(Decimal)
    for pat, day, amount in ledger:
        guarantor = guarantor_of.get(pat)
        if guarantor is None or amount == 0:
            continue
        if amount > 0:
            charges[guarantor].append((day, cents(amount)))
        else:
            credits[guarantor] += -cents(amount)
    expected = {(g,): _fifo_aging(charges[g], credits[g], as_of) for g in set(charges) | set(credits)}
    actual = by_key(
        marts.pg("""
        select guarantor_id, balance, balance_0_30, balance_31_60, balance_61_90, balance_over_90
        from marts.fct_ar_aging"""),
        key_len=1,
    )
    assert_same_table(expected, actual, "fct_ar_aging")
    assert any(v[4] > 0 for v in expected.values()), "no balance over 90 days: aging is untested"


def test_ar_aging_as_of_an_earlier_date_via_the_var(marts):
    """The as_of_date var makes the aging reproducible for any day (here: 90 days before the default)."""
    from datetime import timedelta

    from etl_pipeline.dbt_runner import run_dbt

    earlier = marts.as_of_date - timedelta(days=90)
    run_dbt(
        ["run", "--select", "fct_ar_aging"], settings=marts.settings, dbt_vars={"as_of_date": str(earlier)}
    )
    try:
        (n, as_of, balance) = marts.pg("""select count(*), min(as_of_date), sum(balance)
                                          from marts.fct_ar_aging""")[0]
        assert as_of == earlier and n > 0
        (expected,) = marts.mysql(
            f"""
            SELECT SUM(a) FROM (
                SELECT CAST(ProcFee * (UnitQty + BaseUnits) AS DECIMAL(14, 2)) AS a, PatNum FROM procedurelog
                    WHERE ProcStatus = 2 AND ProcDate > {NO_DATE} AND ProcDate <= %(d)s
                UNION ALL SELECT CAST(AdjAmt AS DECIMAL(14, 2)), PatNum FROM adjustment
                    WHERE AdjDate > {NO_DATE} AND AdjDate <= %(d)s
                UNION ALL SELECT -CAST(SplitAmt AS DECIMAL(14, 2)), PatNum FROM paysplit
                    WHERE DatePay > {NO_DATE} AND DatePay <= %(d)s
                UNION ALL SELECT -CAST(InsPayAmt AS DECIMAL(14, 2)), PatNum FROM claimproc
                    WHERE Status IN (1, 4) AND DateCP > {NO_DATE} AND DateCP <= %(d)s
                UNION ALL SELECT -CAST(WriteOff AS DECIMAL(14, 2)), PatNum FROM claimproc
                    WHERE Status IN (0, 1, 4) AND ClaimNum <> 0 AND ProcDate > {NO_DATE} AND ProcDate <= %(d)s
            ) AS ledger WHERE PatNum IN (SELECT PatNum FROM patient)""",
            {"d": earlier},
        )[0]
        assert cents(balance) == cents(expected)
    finally:
        run_dbt(["run", "--select", "fct_ar_aging"], settings=marts.settings)


def test_appointment_kpis_per_operatory_match_source(marts):
    rows = marts.mysql(f"""
        SELECT DATE(a.AptDateTime), NULLIF(a.Op, 0),
               COUNT(*),
               SUM(a.AptStatus = 2),
               SUM(a.AptStatus = 5),
               SUM(a.AptStatus = 5 AND EXISTS (
                   SELECT 1 FROM histappointment h WHERE h.AptNum = a.AptNum AND h.HistApptAction = 2)),
               SUM(CASE WHEN a.AptStatus IN (1, 2) THEN CHAR_LENGTH(a.Pattern) * 5 ELSE 0 END)
        FROM appointment a
        WHERE a.AptStatus IN (1, 2, 5) AND a.AptDateTime > {NO_DATE}
        GROUP BY 1, 2""")
    practice = {}
    for day, closed, open_seconds in marts.mysql("""
            SELECT SchedDate, MAX(Status IN (1, 2)), SUM(IF(Status = 0, TIME_TO_SEC(StopTime) - TIME_TO_SEC(StartTime), 0))
            FROM schedule WHERE SchedType = 0 GROUP BY SchedDate"""):
        practice[day] = 0 if closed else int(open_seconds) // 60
    expected = {}
    for day, op, scheduled, completed, broken, no_show, booked in rows:
        available = practice.get(day, 480)
        utilisation = (Decimal(int(booked)) / available).quantize(Decimal("0.0001")) if available else None
        expected[(day, op)] = (
            scheduled,
            int(completed),
            int(broken),
            int(no_show),
            int(booked),
            available,
            utilisation,
        )
    actual = {
        (d, op): (s, c, b, ns, int(bm), int(av), u)
        for d, op, s, c, b, ns, bm, av, u in marts.pg("""
        select appointment_date, operatory_id, scheduled_appointments, completed_appointments,
               broken_appointments, no_show_appointments, booked_minutes, available_minutes, utilisation
        from marts.fct_appointment_kpis""")
    }
    assert_same_table(expected, actual, "fct_appointment_kpis")
    assert sum(v[3] for v in expected.values()) > 0, "no no-shows in the data: the rule is untested"


def test_recall_compliance_matches_source(marts):
    rows = marts.mysql(
        f"""
        SELECT r.RecallTypeNum,
               COUNT(*),
               SUM(r.DateScheduled <= {NO_DATE} AND r.DateDue >= %(as_of)s),
               SUM(r.DateScheduled > {NO_DATE}),
               SUM(r.DateScheduled <= {NO_DATE} AND r.DateDue < %(as_of)s)
        FROM recall r
        JOIN recalltype t ON t.RecallTypeNum = r.RecallTypeNum
        JOIN patient p ON p.PatNum = r.PatNum
        WHERE (t.Description LIKE '%%prophy%%' OR t.Description LIKE '%%perio%%' OR t.Description LIKE '%%hyg%%')
          AND p.PatStatus = 0 AND r.IsDisabled = 0 AND r.DateDue > {NO_DATE}
        GROUP BY 1""",
        {"as_of": marts.as_of_date},
    )
    expected = {(t,): (n, int(c), int(s), int(o)) for t, n, c, s, o in rows}
    actual = {
        (t,): (n, c, s, o)
        for t, n, c, s, o in marts.pg("""
        select recall_type_id, recalls_due, recalls_current, recalls_scheduled, recalls_overdue
        from marts.fct_recall_compliance""")
    }
    assert_same_table(expected, actual, "fct_recall_compliance")


def test_new_patients_per_month_match_source(marts):
    rows = marts.mysql(f"""
        SELECT DATE_FORMAT(first_visit, '%Y-%m-01'), COUNT(*) FROM (
            SELECT PatNum, MIN(ProcDate) AS first_visit FROM procedurelog
            WHERE ProcStatus = 2 AND ProcDate > {NO_DATE} GROUP BY PatNum
        ) AS firsts GROUP BY 1""")
    expected = {(date.fromisoformat(m),): (n,) for m, n in rows}
    actual = {
        (m,): (n,)
        for m, n in marts.pg("select month_start, new_patients from marts.fct_new_patients_monthly")
    }
    assert_same_table(expected, actual, "fct_new_patients_monthly")


def test_claim_aging_matches_source(marts):
    rows = marts.mysql(
        f"""
        SELECT ClaimNum, DATEDIFF(%(as_of)s, DateSent) FROM claim
        WHERE ClaimStatus IN ('S', 'W') AND ClaimType IN ('P', 'S')
          AND DateSent > {NO_DATE} AND DateSent <= %(as_of)s""",
        {"as_of": marts.as_of_date},
    )

    def bucket(days):
        return "0-30" if days <= 30 else "31-60" if days <= 60 else "61-90" if days <= 90 else "90+"

    expected = {(claim,): (days, bucket(days)) for claim, days in rows}
    actual = {
        (c,): (d, b)
        for c, d, b in marts.pg("select claim_id, days_outstanding, aging_bucket from marts.fct_claim_aging")
    }
    assert_same_table(expected, actual, "fct_claim_aging")


def test_insurance_paid_vs_billed_matches_source(marts):
    rows = marts.mysql(f"""
        SELECT DATE_FORMAT(c.DateService, '%Y-%m-01'), NULLIF(ip.CarrierNum, 0), COUNT(*),
               SUM(CAST(c.ClaimFee AS DECIMAL(14, 2))),
               SUM(COALESCE(cp.paid, 0)), SUM(COALESCE(cp.written_off, 0))
        FROM claim c
        LEFT JOIN insplan ip ON ip.PlanNum = c.PlanNum
        LEFT JOIN (
            SELECT ClaimNum,
                   SUM(IF(Status IN (1, 4), CAST(InsPayAmt AS DECIMAL(14, 2)), 0)) AS paid,
                   SUM(IF(Status IN (0, 1, 4), CAST(WriteOff AS DECIMAL(14, 2)), 0)) AS written_off
            FROM claimproc WHERE ClaimNum <> 0 GROUP BY ClaimNum
        ) AS cp ON cp.ClaimNum = c.ClaimNum
        WHERE c.ClaimType IN ('P', 'S') AND c.DateService > {NO_DATE}
        GROUP BY 1, 2""")
    expected = {
        (date.fromisoformat(m), carrier): (n, cents(b), cents(p), cents(w)) for m, carrier, n, b, p, w in rows
    }
    actual = {
        (m, c): (n, cents(b), cents(p), cents(w))
        for m, c, n, b, p, w in marts.pg("""
        select service_month, carrier_id, claims, billed, paid, written_off
        from marts.fct_insurance_paid_vs_billed""")
    }
    assert_same_table(expected, actual, "fct_insurance_paid_vs_billed")


def test_provider_performance_matches_source(marts):
    production = marts.mysql(f"""
        SELECT DATE_FORMAT(ProcDate, '%Y-%m-01'), NULLIF(ProvNum, 0),
               SUM(CAST(ProcFee * (UnitQty + BaseUnits) AS DECIMAL(14, 2))), COUNT(*)
        FROM procedurelog WHERE ProcStatus = 2 AND ProcDate > {NO_DATE} GROUP BY 1, 2""")
    visits = marts.mysql(f"""
        SELECT DATE_FORMAT(AptDateTime, '%Y-%m-01'), NULLIF(ProvNum, 0), COUNT(*), COUNT(DISTINCT PatNum)
        FROM appointment WHERE AptStatus = 2 AND AptDateTime > {NO_DATE} GROUP BY 1, 2""")
    expected = defaultdict(lambda: [Decimal(0), 0, 0, 0])
    for month, prov, gross, procedures in production:
        expected[(date.fromisoformat(month), prov)][:2] = [cents(gross), procedures]
    for month, prov, completed, seen in visits:
        expected[(date.fromisoformat(month), prov)][2:] = [completed, seen]
    actual = {
        (m, p): [cents(g), n, c, s]
        for m, p, g, n, c, s in marts.pg("""
        select month_start, provider_id, gross_production, completed_procedures, completed_appointments,
               patients_seen
        from marts.fct_provider_performance
        where completed_procedures <> 0 or completed_appointments <> 0""")
    }
    assert_same_table(dict(expected), actual, "fct_provider_performance")


def test_kpis_still_match_after_days_of_activity_and_incremental_loads(marts):
    """The nightly path: new, changed and deleted rows at the source, the incremental loader, the
    incremental fact; every KPI must still equal the source (runs last: it changes the data set)."""
    before = marts.pg("select count(*), max(procedure_id) from marts.fct_procedure")[0]
    marts.simulate_days(3)
    after = marts.pg("select count(*), max(procedure_id) from marts.fct_procedure")[0]
    assert after[1] > before[1], "the simulated days added no procedures"
    assert marts.pg("""select count(*) from marts.fct_procedure f
                       join raw.procedurelog r on r.procnum = f.procedure_id
                       where r.procfee is distinct from f.procedure_fee""") == [(0,)]
    (orphans,) = marts.pg("""select count(*) from marts.fct_procedure f
                             where not exists (select 1 from staging.stg_opendental__procedurelog s
                                               where s.procedure_id = f.procedure_id)""")[0]
    assert orphans == 0, "the incremental fact kept procedures deleted at the source"
    for check in (
        test_as_of_date_is_the_latest_financial_activity,
        test_daily_production_per_provider_matches_source,
        test_daily_collections_match_source,
        test_ar_aging_per_guarantor_matches_source,
        test_appointment_kpis_per_operatory_match_source,
        test_recall_compliance_matches_source,
        test_new_patients_per_month_match_source,
        test_claim_aging_matches_source,
        test_insurance_paid_vs_billed_matches_source,
        test_provider_performance_matches_source,
    ):
        check(marts)
