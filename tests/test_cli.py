"""The CLI's shape, without servers: `etl` and `python -m etl_pipeline.cli`, --version, help with examples
and the exit-code table, `--json` where a script reads the output, and each exit code as a user meets it."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from test_cli_support import NO_SETTINGS, etl

import etl_pipeline.cli as cli
from etl_pipeline.errors import EXIT_CODES
from etl_pipeline.settings import PROJECT_ROOT

SCRIPT_COMMANDS = ("run", "analyze-schema", "validate-config", "verify", "status", "test-connections")


def _leaf_parsers(parser: argparse.ArgumentParser, path=()):
    """(command path, parser) of every command, nested ones included (`local up`, `synth mutate`)."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in actions:
        for name, sub in action.choices.items():
            yield (*path, name), sub
            yield from _leaf_parsers(sub, (*path, name))


def test_version_is_the_package_version_from_both_entry_points():
    expected = f"etl {version('etl-pipeline')}"
    assert etl("--version").stdout.strip() == expected
    script = Path(sys.executable).with_name("etl")  # the console script of [project.scripts]
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, expected)


def test_help_lists_the_exit_codes_the_module_docstring_documents():
    text = etl("--help").stdout
    for code, meaning in EXIT_CODES:
        assert f"  {code:<4} {meaning}" in text
        assert f"    {code:<4} {meaning}" in cli.__doc__  # the docstring's table says the same
    assert [code for code, _ in EXIT_CODES] == [0, 1, 2, 3, 130]


def test_every_command_has_examples_in_its_help():
    commands = dict(_leaf_parsers(cli.build_parser()))
    assert {("run",), ("local", "up"), ("synth", "mutate"), ("docs", "serve"), ("test-connections",)} <= set(
        commands
    )
    missing = [
        " ".join(path)
        for path, parser in commands.items()
        if "\nexamples:\n  etl " not in parser.format_help()
    ]
    assert not missing


@pytest.mark.parametrize("command", SCRIPT_COMMANDS)
def test_commands_a_script_reads_take_json(command):
    commands = dict(_leaf_parsers(cli.build_parser()))
    assert "--json" in commands[(command,)].format_help()


@pytest.mark.parametrize(
    "args", [("no-such-command",), ("run", "--workers", "0"), ("run", "--tier", "huge"), ()]
)
def test_a_usage_error_exits_2(args):
    done = etl(*args, **NO_SETTINGS)
    assert done.returncode == 2 and "usage: etl" in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    "args,env,message",
    [
        (("run",), {"SOURCE_PORT": "33o6"}, "error: SOURCE_PORT='33o6' is not a port number"),
        (("test-connections",), {"SOURCE_DRIVER": "odbc"}, "error: SOURCE_DRIVER='odbc' is not one of"),
        (
            ("status", "--json"),
            {"TARGET_URL": "postgresql://etl@h:99999/db"},
            "error: TARGET_URL's port=99999",
        ),
    ],
)
def test_a_configuration_error_exits_3(args, env, message):
    done = etl(*args, **NO_SETTINGS, **env)
    assert done.returncode == 3 and done.stderr.startswith(message) and done.stdout == ""


def test_bad_tables_yml_is_a_configuration_error_in_text_and_json(tmp_path):
    bad = tmp_path / "tables.yml"
    bad.write_text("tables:\n  patient: [not, a, mapping\n")
    args = ("validate-config", "--file", str(bad), "--overrides", str(tmp_path / "none.yml"))
    text = etl(*args, **NO_SETTINGS)
    assert text.returncode == 3 and text.stdout.startswith(f"{bad}:")
    done = etl(*args, "--json", **NO_SETTINGS)
    assert done.returncode == 3
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["error_count"] == len(document["errors"]) >= 1
    first = document["errors"][0]
    assert set(first) == {"file", "line", "path", "message"} and first["file"] == str(bad)
    assert isinstance(first["line"], int) and first["line"] >= 2
    assert (
        text.stdout.splitlines()[0] == f"{first['file']}:{first['line']}: {first['path']}: {first['message']}"
    )


def test_an_unreachable_server_is_a_runtime_failure_exit_1():
    done = etl("status", **NO_SETTINGS, TARGET_PORT="1", TARGET_PASSWORD="not-shown-4417")
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot connect to target postgresql://etl@127.0.0.1:1/analytics: ")
    assert "not-shown-4417" not in done.stderr + done.stdout


def test_ctrl_c_exits_130():
    """A source that accepts the connection and never answers: the command waits in the handshake
    (PyMySQL, whose socket reads Python can interrupt) until SIGINT arrives."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(60)
        env = {**NO_SETTINGS, "SOURCE_DRIVER": "pymysql", "SOURCE_PORT": str(silent.getsockname()[1])}
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl_pipeline.cli", "test-connections"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            client, _ = silent.accept()  # the CLI is in the handshake now
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            client.close()
        finally:
            proc.kill()
    assert proc.returncode == 130 and err.strip().endswith("interrupted"), err[-500:]
