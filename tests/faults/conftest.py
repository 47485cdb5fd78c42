"""Prints the fault-injection scenarios table at the end of the session (`make test-faults`)."""

from __future__ import annotations

from faults.fault_support import RESULTS


def pytest_terminal_summary(terminalreporter) -> None:
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("fault injection: scenarios")
    tr.write_line(f"{'scenario':<34} {'fault':<50} {'outcome':<10} {'rows lost':>9} {'tables':>6}")
    for r in RESULTS:
        lost = "?" if r["rows_lost"] is None else r["rows_lost"]
        tr.write_line(
            f"{r['scenario']:<34} {r['fault'][:50]:<50} {r['outcome']:<10} {lost:>9} {r['tables_checked']:>6}"
        )
