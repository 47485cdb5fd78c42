"""Progress of a run: plain log lines every 10 s off a terminal (on a simulated clock), live lines
per table on one (a child process under an 80-column pseudo-terminal made by util-linux `script`)."""

from __future__ import annotations

import io
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from etl_pipeline.load.progress import LiveProgress, PlainProgress, progress_for
from etl_pipeline.schema.tables_config import TableConfig
from etl_pipeline.settings import PROJECT_ROOT

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def table(name: str, estimated_rows: int) -> TableConfig:
    return TableConfig(
        name=name, target_name=name, tier="small", strategy="full", columns=(), estimated_rows=estimated_rows
    )


def test_off_a_terminal_each_table_logs_a_line_every_ten_seconds_of_its_read(caplog):
    now = [100.0]
    progress = PlainProgress(clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="etl_pipeline.load.progress")
    with progress, progress.table(table("procedurelog", 200_000)) as big:
        now[0] = 105.0
        big(10_000)  # not ten seconds yet: no line
        with progress.table(table("nameless", 0)) as small:
            now[0] = 110.0
            big(50_000)
            small(300)  # ten seconds of its own have not passed
            now[0] = 115.0
            big(70_000)
            small(400)
            now[0] = 120.0
            big(120_000)
            small(500)
            now[0] = 130.0
            big(250_000)  # more than estimated
    assert [r.getMessage() for r in caplog.records] == [
        "procedurelog: 50,000 rows read, 5,000 rows/s, 25% of the estimate",
        "nameless: 400 rows read, 40 rows/s",
        "procedurelog: 120,000 rows read, 6,000 rows/s, 60% of the estimate",
        "procedurelog: 250,000 rows read, 8,333 rows/s, 125% of the estimate",
    ]


def test_live_lines_on_a_terminal_and_log_lines_elsewhere():
    assert isinstance(progress_for(io.StringIO()), PlainProgress)
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert isinstance(progress_for(terminal), LiveProgress)
    finally:
        os.close(leader)
        os.close(follower)


CHILD = """
import logging, time
from etl_pipeline.load.progress import LiveProgress, progress_for
from etl_pipeline.schema.tables_config import TableConfig

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")


def table(name, estimate):
    return TableConfig(name=name, target_name=name, tier="small", strategy="full", columns=(), estimated_rows=estimate)


progress = progress_for()
assert isinstance(progress, LiveProgress), progress
with progress:
    with progress.table(table("procedurelog", 200000)) as big:
        with progress.table(table("a_table_name_longer_than_the_column_is", 0)) as other:
            time.sleep(1.2)
            big(50000)
            other(300)
            time.sleep(0.8)
            logging.info("a log record while the lines are live")
            big(150000)
            time.sleep(0.8)
print("after the run", flush=True)
"""


@pytest.mark.skipif(shutil.which("script") is None, reason="util-linux `script` makes the pseudo-terminal")
def test_on_a_terminal_each_table_being_loaded_has_one_live_line():
    command = shlex.join([sys.executable, "-c", CHILD])
    env = {
        k: v for k, v in os.environ.items() if k not in ("CI", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE")
    }
    result = subprocess.run(
        ["script", "-qec", f"stty cols 80 rows 24; {command}", "/dev/null"],
        cwd=PROJECT_ROOT,
        env={**env, "COLUMNS": "80", "LINES": "24", "PYTHONPATH": str(PROJECT_ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.strip() for line in re.split(r"\r\n|\r|\n", ANSI_ESCAPE.sub("", result.stdout))]
    assert lines[-2:] == ["after the run", ""]  # the live lines cleared first
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    big = [line for line in lines if line.startswith("procedurelog ")]
    other = [line for line in lines if line.startswith("a_table_name_longer_tha…")]
    # name, rows read, rows per second, the bar and the share of the estimate
    assert any(re.fullmatch(r"procedurelog +50,000 rows +[\d,]+/s +\S+ +25%", line) for line in big), big
    assert any(re.fullmatch(r"procedurelog +150,000 rows +[\d,]+/s +\S+ +75%", line) for line in big), big
    assert any(re.fullmatch(r"a_table_name_longer_tha… +300 rows +[\d,]+/s +\S+", line) for line in other), (
        other
    )
    # a record logged while the lines are live is printed whole, on a line of its own
    assert lines.count("INFO a log record while the lines are live") == 1
