"""What changed between the previous tables.yml and a new analysis, and how much it matters.

Severities:
  INFO      table added, column added, column retyped to the same raw type (varchar(100) -> varchar(255)),
            nullability changed, tier moved
  WARNING   column retyped to a wider raw type (the loader alters it in place), cursor or strategy
            changed, an override naming a table or column that no longer exists
  CRITICAL  table removed, column removed, column retyped to an incompatible raw type (the raw table
            must be rebuilt), primary key changed (merges and delete detection key on it)
The report is written as JSON (for machines and the DAG) and Markdown (for people) under reports_dir.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from etl_pipeline.schema.tables_model import TableConfig, TablesConfig
from etl_pipeline.type_mapping import is_widening

SEVERITIES = ("INFO", "WARNING", "CRITICAL")


@dataclass(frozen=True)
class Change:
    severity: str
    kind: str
    table: str
    column: str | None
    detail: str


@dataclass
class ChangeReport:
    changes: list[Change] = field(default_factory=list)
    previous_fingerprint: str | None = None
    new_fingerprint: str | None = None
    previous_table_count: int = 0
    new_table_count: int = 0
    has_previous: bool = False

    @property
    def severity(self) -> str:
        """The highest severity present (INFO when nothing changed)."""
        levels = [SEVERITIES.index(c.severity) for c in self.changes]
        return SEVERITIES[max(levels)] if levels else "INFO"

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.changes if c.severity == s) for s in SEVERITIES}

    def to_dict(self) -> dict:
        return {
            "severity": self.severity,
            "counts": self.counts(),
            "has_previous": self.has_previous,
            "previous_table_count": self.previous_table_count,
            "new_table_count": self.new_table_count,
            "previous_fingerprint": self.previous_fingerprint,
            "new_fingerprint": self.new_fingerprint,
            "changes": [asdict(c) for c in self.changes],
        }


def diff_configs(
    old: TablesConfig | None, new: TablesConfig, override_problems: Sequence[str] = ()
) -> ChangeReport:
    report = ChangeReport(
        new_fingerprint=new.metadata.get("schema_fingerprint"), new_table_count=len(new.tables)
    )
    add = report.changes.append
    if old is not None:
        report.has_previous = True
        report.previous_fingerprint = old.metadata.get("schema_fingerprint")
        report.previous_table_count = len(old.tables)
        for name in sorted(set(new.tables) - set(old.tables)):
            add(
                Change(
                    "INFO", "table_added", name, None, f"new table ({len(new.tables[name].columns)} columns)"
                )
            )
        for name in sorted(set(old.tables) - set(new.tables)):
            add(Change("CRITICAL", "table_removed", name, None, "table no longer in the source"))
        for name in sorted(set(old.tables) & set(new.tables)):
            report.changes.extend(_table_changes(old.tables[name], new.tables[name]))
    for problem in override_problems:
        add(Change("WARNING", "override_unknown", _table_of(problem), None, problem))
    return report


def _table_changes(old: TableConfig, new: TableConfig) -> list[Change]:
    changes = []
    name = new.name
    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    for col in [c for c in new_cols if c not in old_cols]:
        changes.append(Change("INFO", "column_added", name, col, f"{new_cols[col].source_type}"))
    for col in [c for c in old_cols if c not in new_cols]:
        changes.append(Change("CRITICAL", "column_removed", name, col, f"was {old_cols[col].source_type}"))
    for col in [c for c in new_cols if c in old_cols]:
        before, after = old_cols[col], new_cols[col]
        if before.source_type != after.source_type:
            if before.target_type == after.target_type:
                severity = "INFO"
            elif is_widening(before.target_type, after.target_type):
                severity = "WARNING"
            else:
                severity = "CRITICAL"
            changes.append(
                Change(
                    severity,
                    "column_retyped",
                    name,
                    col,
                    f"{before.source_type} -> {after.source_type} "
                    f"(raw {before.target_type} -> {after.target_type})",
                )
            )
        if before.nullable != after.nullable:
            changes.append(
                Change(
                    "INFO",
                    "nullability_changed",
                    name,
                    col,
                    f"nullable {before.nullable} -> {after.nullable}",
                )
            )
    if tuple(old.primary_key) != tuple(new.primary_key):
        changes.append(
            Change(
                "CRITICAL",
                "primary_key_changed",
                name,
                None,
                f"{list(old.primary_key)} -> {list(new.primary_key)}",
            )
        )
    if old.strategy != new.strategy:
        changes.append(Change("WARNING", "strategy_changed", name, None, f"{old.strategy} -> {new.strategy}"))
    if old.cursor != new.cursor:
        changes.append(Change("WARNING", "cursor_changed", name, None, f"{old.cursor} -> {new.cursor}"))
    if old.tier != new.tier:
        changes.append(Change("INFO", "tier_changed", name, None, f"{old.tier} -> {new.tier}"))
    return changes


def _table_of(problem: str) -> str:
    # "overrides: tables.patient.exclude_columns: ..." or "overrides: table 'x' does not exist ..."
    if "tables." in problem:
        return problem.split("tables.", 1)[1].split(".", 1)[0].split(":", 1)[0]
    if "table '" in problem:
        return problem.split("table '", 1)[1].split("'", 1)[0]
    return ""


def lost_table_share(report: ChangeReport) -> float:
    if not report.previous_table_count:
        return 0.0
    removed = sum(1 for c in report.changes if c.kind == "table_removed")
    return removed / report.previous_table_count


def write_reports(
    report: ChangeReport, reports_dir: Path, extra: dict | None = None, now: datetime | None = None
) -> tuple[Path, Path]:
    """schema_changes_<UTC timestamp>.json and .md under reports_dir. Names and types only, no row values."""
    now = now or datetime.now(UTC)
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    json_path = reports_dir / f"schema_changes_{stamp}.json"
    md_path = reports_dir / f"schema_changes_{stamp}.md"
    payload = {"generated_at": now.replace(microsecond=0).isoformat(), **report.to_dict(), **(extra or {})}
    _write_atomic(json_path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    _write_atomic(
        md_path, render_markdown(report, now, ((extra or {}).get("analysis") or {}).get("notes") or [])
    )
    return json_path, md_path


def render_markdown(report: ChangeReport, now: datetime, notes: Sequence[str] = ()) -> str:
    counts = report.counts()
    lines = [
        f"# Schema changes {now.strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        (
            f"Severity: **{report.severity}** ({counts['CRITICAL']} critical, {counts['WARNING']} warning, "
            f"{counts['INFO']} info); tables {report.previous_table_count} -> {report.new_table_count}."
        ),
        "",
    ]
    if not report.has_previous:
        lines += ["First analysis: there was no readable previous tables.yml to compare with.", ""]
    if not report.changes:
        lines += ["No changes.", ""]
    else:
        lines += ["| severity | change | table | column | detail |", "|---|---|---|---|---|"]
        for c in by_severity(report.changes):
            lines.append(
                f"| {c.severity} | {c.kind} | {_md(c.table)} | {_md(c.column or '')} | {_md(c.detail)} |"
            )
        lines.append("")
    if notes:
        lines += ["## Notes (not changes)", "", *[f"- {_md(note)}" for note in notes], ""]
    return "\n".join(lines)


def by_severity(changes: list[Change]) -> list[Change]:
    """CRITICAL first, then WARNING, then INFO; by table and column within a severity."""
    return sorted(changes, key=lambda c: (-SEVERITIES.index(c.severity), c.table, c.column or "", c.kind))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
