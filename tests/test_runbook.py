"""Every command in NIGHTLY_RUN.md works: the CLI ones are executed against the test stack, the
`airflow dags trigger --conf` ones are checked against the real DAG's params and the run's table check."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
from airflow_support import parse_dag
from dbt_support import etl_cli

from etl_pipeline.nightly_checks import check_params
from etl_pipeline.settings import PROJECT_ROOT, load_settings
from etl_pipeline.synthetic import generate

RUNBOOK = PROJECT_ROOT / "NIGHTLY_RUN.md"


def runbook_commands() -> list[str]:
    """Command lines inside the fenced bash blocks, in order, without trailing comments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", RUNBOOK.read_text(), flags=re.DOTALL):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(re.sub(r"\s+#\s.*$", "", line))
    return commands


CLI_PREFIX = "python -m etl_pipeline.cli "
TRIGGER_PREFIX = "airflow dags trigger etl_pipeline"


def test_the_runbook_only_uses_commands_this_test_knows():
    commands = runbook_commands()
    assert len(commands) >= 10
    for command in commands:
        assert command.startswith((CLI_PREFIX, TRIGGER_PREFIX)), (
            f"untested command in NIGHTLY_RUN.md: {command}"
        )


@pytest.fixture(scope="module")
def loaded_source(settings, tmp_path_factory):
    """A source that has been through a nightly load already, as the runbook assumes; its own config
    directory, so a tables.yml another module wrote for its own tables is not the one analysed against."""
    with open("/dev/null", "w") as quiet:
        generate(settings.source_admin, 0.01, seed=5, out=quiet)
    config_dir = tmp_path_factory.mktemp("runbook-config")
    for args in (["analyze-schema"], ["run"]):
        etl_cli(*args, config_dir=config_dir)
    with pytest.MonkeyPatch.context() as env:  # the runbook's commands and load_settings() read it too
        env.setenv("ETL_CONFIG_DIR", str(config_dir))
        yield settings


def test_cli_commands_run_in_order(loaded_source):
    for command in runbook_commands():
        if not command.startswith(CLI_PREFIX):
            continue
        args = shlex.split(command[len(CLI_PREFIX) :])
        result = subprocess.run(
            [sys.executable, "-m", "etl_pipeline.cli", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{command} exited {result.returncode}: {result.stderr[-2000:]}"
        if "--json" in args:
            json.loads(result.stdout)


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    return parse_dag("etl_pipeline", tmp_path_factory.mktemp("airflow"))


def runbook_steps() -> list[list[str]]:
    """The task ids and groups named in each row of the runbook's step table, in order."""
    table = RUNBOOK.read_text().split("| step | task(s) |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.splitlines()[2:]]
    return [re.findall(r"`([^`]+)`", cells[2]) for cells in rows]


def test_the_runbooks_steps_are_the_dags_tasks_in_order(dag):
    steps = runbook_steps()
    assert len(steps) == 6
    groups = set(dag.task_group_dict)

    def members(name: str) -> set[str]:
        group = name.removesuffix(".*")
        assert dag.has_task(name) or group in groups, f"NIGHTLY_RUN.md names {name}: not in the DAG"
        return {name} if dag.has_task(name) else {t for t in dag.task_ids if t.startswith(f"{group}.")}

    named = [set().union(*(members(name) for name in names)) for names in steps]
    unnamed = set(dag.task_ids) - set().union(*named)
    assert not unnamed, f"DAG tasks NIGHTLY_RUN.md does not mention: {sorted(unnamed)}"
    for earlier, later in zip(named, named[1:], strict=False):
        # each step starts right after the one before it
        assert any(dag.get_task(t).upstream_task_ids & earlier for t in later), (earlier, later)


def test_trigger_confs_pass_the_dag_params_and_the_table_check(loaded_source, dag):
    from airflow.sdk.definitions.param import ParamsDict

    confs = [json.loads(shlex.split(c)[-1]) for c in runbook_commands() if c.startswith(TRIGGER_PREFIX)]
    assert confs, "the runbook shows how to trigger with conf"
    for conf in confs:
        params = ParamsDict(dag.params)
        for key, value in conf.items():
            params[key] = value
        options = check_params(params.validate(), load_settings())
        assert options["force_full_refresh"] == conf.get("force_full_refresh", False)
