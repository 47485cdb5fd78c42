"""The stack tests pass in an 80-column terminal, and a failing one leaves no server behind.

`ps` cuts its lines to the terminal's width, so a process check that used it found the servers in CI
(no terminal) and missed them in a terminal. This runs the process-checking stack tests, plus a probe
that fails on purpose with servers up, in a nested pytest under an 80-column pseudo-terminal.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from etl_pipeline.local.processes import processes_mentioning
from etl_pipeline.settings import PROJECT_ROOT

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STACK_TESTS = [
    "tests/test_local_stack.py::test_down_leaves_no_process_behind",
    "tests/test_local_stack.py::test_port_in_use_gives_one_line_error_and_no_stray_process",
    "tests/test_local_stack.py::test_postgres_port_in_use_stops_the_mariadb_it_started",
    "tests/stack_probe.py::test_fails_with_its_servers_running",
]


@pytest.mark.skipif(
    shutil.which("script") is None, reason="util-linux `script` is needed for a pseudo-terminal"
)
def test_stack_tests_in_an_80_column_terminal_leave_no_server_behind():
    nested_id = int(os.environ.get("TEST_STACK_ID", "0")) + 50  # its own ports and data directories
    pytest_cmd = shlex.join(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", *STACK_TESTS]
    )
    # as a terminal that exports its size: `ps` then cuts its lines at 80 characters
    env = {**{k: v for k, v in os.environ.items() if k != "CI"}, "COLUMNS": "80", "LINES": "24"}
    env["TEST_STACK_ID"] = str(nested_id)
    # deep enough that every server's data directory lies past column 80 of its command line
    scratch_dir = PROJECT_ROOT / ".local" / f"terminal-check-{nested_id}"
    env["TEST_SCRATCH_DIR"] = str(scratch_dir)
    result = subprocess.run(
        ["script", "-qec", f"stty cols 80; {pytest_cmd}", "/dev/null"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = ANSI_ESCAPE.sub("", result.stdout + result.stderr)
    summary = re.search(r"(\d+) failed, (\d+) passed", output)
    assert summary, output[-3000:]
    assert (int(summary.group(1)), int(summary.group(2))) == (1, 3), output[-3000:]
    assert "deliberate failure with the scratch servers still up" in output
    leftovers = processes_mentioning(scratch_dir)
    assert leftovers == [], [p.command_line[:200] for p in leftovers]
    shutil.rmtree(scratch_dir, ignore_errors=True)


def test_a_run_sent_sigterm_stops_its_servers(tmp_path):
    """A CI timeout or `kill` ends the suite with SIGTERM: its fixtures still tear down their servers."""
    nested_id = int(os.environ.get("TEST_STACK_ID", "0")) + 51
    scratch_dir = PROJECT_ROOT / ".local" / f"sigterm-check-{nested_id}"
    marker = tmp_path / "servers-up"
    env = {**os.environ, "TEST_STACK_ID": str(nested_id), "TEST_SCRATCH_DIR": str(scratch_dir)}
    env["PROBE_MARKER"] = str(marker)
    env.pop("PYTEST_XDIST_WORKER", None)
    probe = "tests/stack_probe.py::test_waits_with_its_servers_running_until_killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", probe],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the probe never started its servers"
        assert processes_mentioning(scratch_dir), "the probe's servers should be up"
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output[-2000:]
    leftovers = processes_mentioning(scratch_dir)
    assert leftovers == [], [p.command_line[:200] for p in leftovers]
    shutil.rmtree(scratch_dir, ignore_errors=True)
