"""Shared fixtures: a real MariaDB + PostgreSQL started for the test run and stopped after it.

The servers are a `LocalStack` of their own (data under .local/test-stack-<id>, ports offset by
<id>), so tests never touch the demo stack. Set TEST_STACK_ID to run several suites side by side.

`make test` runs the suite in two pytest-xdist workers (a module stays in one worker: its module
fixtures are built once). Each worker is a suite of its own: stack id TEST_STACK_ID + WORKER_STRIDE *
worker number, and its own dbt target directory (ETL_DBT_TARGET_DIR: dbt's partial-parse state and run
results are files in the project otherwise).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from etl_pipeline.local.stack import LocalStack
from etl_pipeline.settings import PROJECT_ROOT, Settings, load_settings

WORKER_STRIDE = 20  # above the scratch stacks' port offsets; test_terminal's nested suite adds 50


def _worker_number() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist
    return int(worker[2:]) if worker.startswith("gw") else 0


STACK_ID = int(os.environ.get("TEST_STACK_ID", "0")) + WORKER_STRIDE * _worker_number()
os.environ["TEST_STACK_ID"] = str(STACK_ID)  # the modules and child suites that read it agree
if os.environ.get("PYTEST_XDIST_WORKER"):  # before etl_pipeline.dbt_runner is imported
    os.environ["ETL_DBT_TARGET_DIR"] = str(PROJECT_ROOT / ".local" / f"dbt-target-{STACK_ID}")


def _test_stack() -> LocalStack:
    root = PROJECT_ROOT / ".local" / f"test-stack-{STACK_ID}"
    return LocalStack(
        root=root,
        mariadb_port=23306 + STACK_ID * 10,
        postgres_port=25432 + STACK_ID * 10,
        env_file=root / "test.env",
    )


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> Iterator[LocalStack]:
    """Fresh servers for this test run; stopped (data deleted) at the end, also when set-up fails."""
    stack = _test_stack()
    stack.destroy()
    saved = {k: os.environ.get(k) for k in ["ETL_ENV_FILE", "ETL_CONFIG_DIR"]}
    try:
        env = stack.up()
        saved.update({k: os.environ.get(k) for k in env if k not in saved})
        os.environ.update(env)
        os.environ["ETL_ENV_FILE"] = str(stack.env_file)
        os.environ["ETL_CONFIG_DIR"] = str(tmp_path_factory.mktemp("etl-config"))
        yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stack.destroy()


@pytest.fixture
def scratch_stacks() -> Iterator[Callable[[str, int], LocalStack]]:
    """Makes throwaway stacks of a test's own (`make(name, offset)`), destroyed when the test ends however
    it ends. Their ports follow TEST_STACK_ID, so suites side by side do not collide."""
    made: list[LocalStack] = []

    def make(name: str, offset: int) -> LocalStack:
        base = Path(os.environ.get("TEST_SCRATCH_DIR") or PROJECT_ROOT / ".local")
        root = base / f"test-scratch-{STACK_ID}-{name}"
        stack = LocalStack(
            root=root,
            mariadb_port=21306 + STACK_ID * 10 + offset,
            postgres_port=22432 + STACK_ID * 10 + offset,
            env_file=root / "x.env",
        )
        stack.destroy()
        made.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in made:
            stack.destroy()


@pytest.fixture
def source_clock(monkeypatch) -> Callable[[str], None]:
    """`at('YYYY-MM-DD HH:MM:SS')`: every source session opened from now on has that UTC time as NOW()."""
    from etl_pipeline import db

    session_sql = db.SOURCE_SESSION_SQL

    def at(utc: str) -> None:
        monkeypatch.setattr(
            db, "SOURCE_SESSION_SQL", (*session_sql, f"SET timestamp = UNIX_TIMESTAMP('{utc}')")
        )

    return at


@pytest.fixture(scope="session")
def settings(local_stack) -> Settings:
    return load_settings()


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config) -> None:
    # a SIGTERM (a CI timeout, `kill`) ends the run as Ctrl-C does: fixtures tear down, servers stop,
    # child processes started with subprocess.run are killed
    signal.signal(signal.SIGTERM, _interrupted)


def pytest_report_header(config) -> str:
    return f"test stack id {STACK_ID} (data under {Path('.local') / f'test-stack-{STACK_ID}'})"


# The longest modules first: under xdist (`--dist loadfile` hands out modules in collection order) no
# worker then picks one of them up last while the other worker sits idle.
LONGEST_FIRST = (
    "test_airflow_standalone.py",
    "test_docs_login.py",
    "test_security_leaks.py",
    "test_dbt_build.py",
    "test_kpi_correctness.py",
    "test_docs_site.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: the rest as collected
