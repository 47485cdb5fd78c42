"""Not collected by default (no `test_` prefix): `test_terminal.py` runs it in a nested pytest under a
pseudo-terminal. One test starts a scratch stack and then fails on purpose, to show that a failing
test leaves no server behind; the other waits with its servers up until the run is sent SIGTERM."""

from __future__ import annotations

from etl_pipeline.local.processes import processes_mentioning


def test_fails_with_its_servers_running(scratch_stacks):
    stack = scratch_stacks("deliberate-failure", 4)
    stack.up()
    assert processes_mentioning(stack.root), "servers should be running after up"
    raise AssertionError("deliberate failure with the scratch servers still up")


def test_waits_with_its_servers_running_until_killed(scratch_stacks):
    """Run alone by `test_terminal`, which sends the nested pytest SIGTERM once the marker exists."""
    import os
    import time
    from pathlib import Path

    stack = scratch_stacks("terminated", 5)
    stack.up()
    Path(os.environ["PROBE_MARKER"]).write_text("up")
    time.sleep(300)
