"""Leak checks shared by the security tests and the nightly e2e run (no tests here).

`assert_no_leaks(texts=..., paths=..., needles=...)` greps captured output and files for every secret of
the stack and a sample of real patient values; `stack_secrets(stack)` and `patient_needles(settings)`
build the needles. The failure message names where a needle was found and which kind it was, never
the value itself (a leak report must not leak).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etl_pipeline.db import connect_source, connect_target
from etl_pipeline.settings import STATE_SCHEMA, read_env_file
from etl_pipeline.type_mapping import quote_ident

SECRET_KEYS = (
    "SOURCE_PASSWORD",
    "SOURCE_ADMIN_PASSWORD",
    "TARGET_PASSWORD",
    "MARIADB_ROOT_PASSWORD",
    "POSTGRES_SUPERUSER_PASSWORD",
)
MIN_LEN = 6  # shorter values (initials, "Smith") collide with ordinary words
TEXT_SUFFIXES = {".log", ".json", ".md", ".txt", ".yml", ".yaml", ".csv", ".html", ".out", ".err", ""}


@dataclass(frozen=True)
class Needle:
    kind: str  # e.g. "SOURCE_PASSWORD", "patient.SSN"
    value: str


def stack_secrets(stack, extra: dict[str, str] | None = None) -> list[Needle]:
    """Every password of a LocalStack (its secrets.env) plus `extra` (e.g. a wrong password tried)."""
    creds = read_env_file(stack.paths.secrets_file)
    found = [Needle(k, creds[k]) for k in SECRET_KEYS if creds.get(k)]
    found += [Needle(k, v) for k, v in (extra or {}).items() if v]
    assert len(found) >= len(SECRET_KEYS), f"secrets missing from {stack.paths.secrets_file}"
    return found


def patient_needles(settings, limit: int = 40) -> list[Needle]:
    """A sample of real values from the source: patient names, SSNs, e-mails and commlog note fragments."""
    conn = connect_source(settings.source_admin)
    cur = conn.cursor()
    needles: list[Needle] = []
    for column in ("LName", "FName", "SSN", "Email"):
        cur.execute(
            f"SELECT DISTINCT `{column}` FROM patient WHERE CHAR_LENGTH(`{column}`) >= %s "
            f"ORDER BY PatNum LIMIT %s",
            (MIN_LEN, limit),
        )
        needles += [Needle(f"patient.{column}", _text(v)) for (v,) in cur.fetchall()]
    cur.execute(
        "SELECT Note FROM commlog WHERE CHAR_LENGTH(Note) >= 24 ORDER BY CommlogNum LIMIT %s", (limit,)
    )
    for (note,) in cur.fetchall():
        text = _text(note)
        needles.append(Needle("commlog.Note", text[:24]))  # fragments: a log line may cut a note
        needles.append(Needle("commlog.Note", text[-24:]))
    conn.close()
    assert needles, "no patient values in the source: generate it first"
    return [n for n in needles if len(n.value.strip()) >= MIN_LEN]


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)


def collect_files(*roots: Path) -> list[Path]:
    """Text-ish files under `roots` (files or directories) that exist."""
    files: list[Path] = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += [
                p
                for p in root.rglob("*")
                if p.is_file() and p.suffix in TEXT_SUFFIXES and p.stat().st_size < 50_000_000
            ]
    return files


def find_leaks(
    needles: list[Needle], texts: dict[str, str] | None = None, paths: list[Path] | None = None
) -> list[str]:
    """Where each needle occurs: ["<where>: <kind>", ...]; empty when nothing leaked."""
    sources = dict(texts or {})
    for path in sorted(paths or [], key=_journal_first):
        try:
            sources[str(path)] = Path(path).read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            # an SQLite -wal/-journal checkpointed away since it was listed: its pages are in the
            # database file, read after it
            if not _is_journal(Path(path)):
                raise
    hits = []
    for where, text in sources.items():
        kinds = sorted({n.kind for n in needles if n.value in text})
        hits += [f"{where}: {kind}" for kind in kinds]
    return hits


def _is_journal(path: Path) -> bool:
    return path.name.endswith(("-wal", "-journal", "-shm"))


def _journal_first(path: Path) -> tuple[bool, str]:
    return (not _is_journal(Path(path)), str(path))


def assert_no_leaks(
    needles: list[Needle], texts: dict[str, str] | None = None, paths: list[Path] | None = None
) -> None:
    """Fail naming the place and the kind of every secret or patient value found (never the value)."""
    assert len(texts or {}) + len(paths or []) > 0, "nothing to check"
    hits = find_leaks(needles, texts, paths)
    assert not hits, "secrets or patient data leaked:\n  " + "\n  ".join(hits)


def state_tables_text(settings) -> dict[str, str]:
    """Every row of every table in the state schema (run reports, history, error columns) as text, by table."""
    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                (STATE_SCHEMA,),
            )
            texts = {}
            for (name,) in cur.fetchall():
                cur.execute(f"SELECT t::text FROM {quote_ident(STATE_SCHEMA)}.{quote_ident(name)} t")
                texts[f"{STATE_SCHEMA}.{name}"] = "\n".join(text for (text,) in cur.fetchall())
            return texts
    finally:
        conn.close()
