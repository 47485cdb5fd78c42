"""Not collected by default (no `test_` prefix): `test_terminal.py` runs it in a nested pytest under a
pseudo-terminal. Its one test starts a scratch stack and then fails on purpose, to show that a failing
test leaves no server behind."""

from __future__ import annotations

from etl_pipeline.local.processes import processes_mentioning


def test_fails_with_its_servers_running(scratch_stacks):
    stack = scratch_stacks("deliberate-failure", 4)
    stack.up()
    assert processes_mentioning(stack.root), "servers should be running after up"
    raise AssertionError("deliberate failure with the scratch servers still up")
