"""The README stays true to the code it documents."""

from __future__ import annotations

from etl_pipeline import type_mapping
from etl_pipeline.cli import build_parser
from etl_pipeline.settings import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_readme_type_mapping_is_the_mapping_modules_table():
    rows = [line.strip() for line in type_mapping.__doc__.splitlines() if line.strip().startswith("|")]
    readme_rows = [line.strip() for line in README.splitlines() if line.strip().startswith("|")]
    for row in rows:
        assert row in readme_rows, f"README type mapping lacks: {row}"


def test_every_cli_command_is_documented():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        assert f"`{name}" in README, f"README does not mention the `{name}` command"
