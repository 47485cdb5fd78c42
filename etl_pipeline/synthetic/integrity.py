"""Integrity checks of a synthetic (or real) source: dangling foreign keys and money that must add up.
Used by the tests and handy after a mutate run."""

from __future__ import annotations

from etl_pipeline.synthetic.fks import EXTERNAL_ZERO, FOREIGN_KEYS, MAY_DANGLE
from etl_pipeline.synthetic.schema_data import TABLES
from etl_pipeline.type_mapping import quote_mysql_ident as q


def dangling_foreign_keys(cur, database: str) -> dict[str, int]:
    """{"table.column -> target": rows whose non-zero value has no target row}, only the non-empty ones."""
    found = {}
    for table, column, target in FOREIGN_KEYS:
        if (table, column) in MAY_DANGLE:
            continue
        pk = TABLES[target]["pk"]
        cur.execute(
            f"SELECT COUNT(*) FROM {q(database)}.{q(table)} c LEFT JOIN {q(database)}.{q(target)} t "
            f"ON t.{q(pk)} = c.{q(column)} WHERE c.{q(column)} <> 0 AND t.{q(pk)} IS NULL"
        )
        bad = cur.fetchone()[0]
        if bad:
            found[f"{table}.{column} -> {target}"] = bad
    for table, column in EXTERNAL_ZERO:
        cur.execute(f"SELECT COUNT(*) FROM {q(database)}.{q(table)} WHERE {q(column)} <> 0")
        bad = cur.fetchone()[0]
        if bad:
            found[f"{table}.{column} (external, must be 0)"] = bad
    return found


MONEY_CHECKS = {
    "paysplits sum to payment.PayAmt": "SELECT COUNT(*) FROM {db}.payment y LEFT JOIN (SELECT PayNum, SUM(SplitAmt) s FROM {db}.paysplit "
    "GROUP BY PayNum) x ON x.PayNum = y.PayNum WHERE ABS(COALESCE(x.s, 0) - y.PayAmt) > 0.005",
    "claimproc InsPayAmt sums to claim.InsPayAmt": "SELECT COUNT(*) FROM {db}.claim c LEFT JOIN (SELECT ClaimNum, SUM(InsPayAmt) s FROM {db}.claimproc "
    "WHERE ClaimNum > 0 GROUP BY ClaimNum) x ON x.ClaimNum = c.ClaimNum "
    "WHERE ABS(COALESCE(x.s, 0) - c.InsPayAmt) > 0.005",
    "claimproc InsPayAmt sums to claimpayment.CheckAmt": "SELECT COUNT(*) FROM {db}.claimpayment cp JOIN (SELECT ClaimPaymentNum, SUM(InsPayAmt) s "
    "FROM {db}.claimproc WHERE ClaimPaymentNum > 0 GROUP BY ClaimPaymentNum) x "
    "ON x.ClaimPaymentNum = cp.ClaimPaymentNum WHERE ABS(x.s - cp.CheckAmt) > 0.005",
    "guarantor is the family head": "SELECT COUNT(*) FROM {db}.patient p JOIN {db}.patient g ON g.PatNum = p.Guarantor "
    "WHERE g.Guarantor <> g.PatNum",
    "aging only on guarantor rows": "SELECT COUNT(*) FROM {db}.patient WHERE PatNum <> Guarantor AND (BalTotal <> 0 OR Bal_0_30 <> 0)",
}


def broken_money_rules(cur, database: str) -> dict[str, int]:
    found = {}
    for rule, sql in MONEY_CHECKS.items():
        cur.execute(sql.format(db=q(database)))
        bad = cur.fetchone()[0]
        if bad:
            found[rule] = bad
    return found
