"""Run dbt commands on the `dbt_dental_models` project with the right environment.

dbt reads its connection through `env_var()` in `dbt_dental_models/profiles.yml` and never reads a
`.env` file, so every dbt call goes through here: the settings (`load_settings()`, which does read
`.env`) are exported as TARGET_* variables, the profiles dir is the project itself, and the target is
`prod` when ETL_ENVIRONMENT is prod (else `local`) unless DBT_TARGET or `target=` says otherwise.
The CLI, the DAG and the tests all call `run_dbt()`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from etl_pipeline.errors import EtlError
from etl_pipeline.redact import redact
from etl_pipeline.settings import PROJECT_ROOT, Settings, load_settings

log = logging.getLogger(__name__)

DBT_PROJECT_NAME = "dbt_dental_models"  # `name:` in dbt_project.yml
DBT_PROFILE = "dbt_dental_models"  # its profile in profiles.yml
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_dental_models"
DBT_MANIFEST = (
    DBT_PROJECT_DIR / "target" / "manifest.json"
)  # built by `make manifest`; Cosmos renders from it
# where the pipeline's own dbt commands write (run results, partial-parse state): the project's target/,
# or ETL_DBT_TARGET_DIR for suites side by side (each its own; the manifest above is left to `make manifest`)
DBT_TARGET_DIR = Path(os.environ.get("ETL_DBT_TARGET_DIR") or DBT_PROJECT_DIR / "target")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DbtError(EtlError):
    """A dbt command failed; the message lists the failing nodes (dbt's own words)."""


@dataclass(frozen=True)
class DbtResult:
    args: tuple[str, ...]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def dbt_executable() -> str:
    """The dbt next to the running interpreter (the project venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if not found:
        raise DbtError("dbt is not installed: run `uv sync --extra dev` (dbt-core and dbt-postgres)")
    return found


def default_target(settings: Settings | None = None) -> str:
    """DBT_TARGET, else `prod` when ETL_ENVIRONMENT is prod, else `local`.

    Without settings only the process environment is read (the DAG file at parse time, which must
    not depend on a `.env` file)."""
    environment = settings.environment if settings else os.environ.get("ETL_ENVIRONMENT")
    return os.environ.get("DBT_TARGET") or ("prod" if environment == "prod" else "local")


def dbt_env(settings: Settings | None = None) -> dict[str, str]:
    """The process environment for dbt: TARGET_* from the settings, telemetry off."""
    settings = settings or load_settings()
    target = settings.target
    env = dict(os.environ)
    env.update(
        {
            "TARGET_HOST": target.host,
            "TARGET_PORT": str(target.port),
            "TARGET_DATABASE": target.database,
            "TARGET_USER": target.user,
            "TARGET_PASSWORD": target.password,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DO_NOT_TRACK": "1",
        }
    )
    if target.sslmode:
        env["TARGET_SSLMODE"] = target.sslmode
    if target.sslrootcert:
        # libpq reads the CA file for verify-ca / verify-full from PGSSLROOTCERT (the profile has no such field
        # to fill conditionally)
        env["PGSSLROOTCERT"] = target.sslrootcert
    return env


def run_dbt(
    args: list[str],
    *,
    settings: Settings | None = None,
    target: str | None = None,
    dbt_vars: dict | None = None,
    check: bool = True,
    echo: bool = False,
) -> DbtResult:
    """Run `dbt <args>` in the project; raise DbtError naming the failures when `check` and it fails.

    `dbt parse` needs no database: pass settings=None and nothing is connected to.
    """
    settings = settings or load_settings()
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        # named as Cosmos names it: dbt reuses its partial-parse state only when profile and target match
        "--profile",
        DBT_PROFILE,
        "--target",
        target or default_target(settings),
    ]
    if dbt_vars:
        command += ["--vars", json.dumps(dbt_vars)]
    if "--target-path" not in args and DBT_MANIFEST.parent != DBT_TARGET_DIR:
        command += ["--target-path", str(DBT_TARGET_DIR)]
    log.info("dbt %s", " ".join(args))
    proc = subprocess.run(
        command, check=False, cwd=DBT_PROJECT_DIR, env=dbt_env(settings), capture_output=not echo, text=True
    )
    output = redact(_ANSI.sub("", (proc.stdout or "") + (proc.stderr or "")))
    result = DbtResult(args=tuple(args), returncode=proc.returncode, output=output)
    if check and not result.ok:
        raise DbtError(f"dbt {' '.join(args)} failed (exit {proc.returncode}): {failure_summary(output)}")
    return result


def failure_summary(output: str, limit: int = 5) -> str:
    """What failed, on one line: dbt's error lines plus the database message that follows each."""
    lines = [
        line.split("  ", 1)[-1].strip() if re.match(r"^\d\d:\d\d:\d\d", line) else line.strip()
        for line in output.splitlines()
    ]
    wanted: list[str] = []
    for i, line in enumerate(lines):
        if not re.search(r"\b(ERROR|FAIL|ERROR STALE|Error)\b", line) or re.search(
            r"Done\. PASS=|Completed with", line
        ):
            continue
        wanted.append(line)
        if re.search(r"Error in ", line):  # the database's own words come on the next line
            following = next((nxt for nxt in lines[i + 1 : i + 3] if nxt), "")
            if following:
                wanted.append(following)
    wanted = list(dict.fromkeys(w for w in wanted if w)) or [lines[-1] if lines else "no output"]
    summary = "; ".join(wanted[:limit])
    more = len(wanted) - limit
    return summary + (f" (+{more} more)" if more > 0 else "")
