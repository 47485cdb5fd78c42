"""deploy/helm/values.yaml, the values for the official Airflow Helm chart: checked as YAML only.

There is no helm binary and no cluster here, so nothing is rendered. What is checked: the file parses;
no credential is written into it; the executor's settings equal airflow/celery.env (the file compose and
the local cluster read); the image is the one compose builds; telemetry is off; the Celery workers serve
the queues compose's workers serve; the pools are created; the shared volumes are mounted where the
ETL looks; and every Secret the values name is created by a `kubectl create secret` in the README.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl_pipeline.airflow_cluster import CELERY_ENV_FILE, CELERY_WORKERS
from etl_pipeline.nightly_scheduling import DBT_POOL, EXTRACT_POOL
from etl_pipeline.settings import read_env_file

ROOT = Path(__file__).resolve().parents[1]
VALUES_FILE = ROOT / "deploy" / "helm" / "values.yaml"
README = ROOT / "deploy" / "helm" / "README.md"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY", re.IGNORECASE)
# keys whose value names a Secret (or a key inside one) instead of holding a secret
REFERENCE_KEY = re.compile(r"secretname$|^secretkey$", re.IGNORECASE)
URL_CREDENTIAL = re.compile(r"://[^/\s:@]*:[^/\s@]+@")

# Secret-name values of the chart -> the key the chart reads inside that Secret
CHART_SECRETS = {
    ("data", "metadataSecretName"): "connection",
    ("data", "resultBackendSecretName"): "connection",
    ("data", "brokerUrlSecretName"): "connection",
    ("redis", "passwordSecretName"): "password",
    ("fernetKeySecretName",): "fernet-key",
    ("apiSecretKeySecretName",): "api-secret-key",
    ("jwtSecretName",): "jwt-secret",
}
# compose's AIRFLOW__* settings the chart fills in from those Secrets, or itself
CHART_MANAGED = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
}
TELEMETRY_OFF = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
}
# the environment variables the connections Secret must offer (README's env file)
CONNECTION_KEYS = {
    "AIRFLOW_CONN_OPENDENTAL_SOURCE",
    "AIRFLOW_CONN_ANALYTICS_WAREHOUSE",
}


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    data = yaml.safe_load(VALUES_FILE.read_text())
    assert isinstance(data, dict), f"{VALUES_FILE} is not a mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def env_map(values: dict[str, Any]) -> dict[str, str]:
    entries = values.get("env") or []
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"env names twice: {names}"
    return {entry["name"]: entry.get("value") for entry in entries}


def effective_airflow_settings(values: dict[str, Any]) -> dict[str, str]:
    """AIRFLOW__SECTION__KEY -> value as Airflow would see it: the chart's `executor`, then `config`
    (airflow.cfg), then AIRFLOW__* entries of `env` (an environment variable wins over airflow.cfg)."""
    settings = {"AIRFLOW__CORE__EXECUTOR": str(values.get("executor"))}
    for section, options in (values.get("config") or {}).items():
        for key, value in (options or {}).items():
            settings[f"AIRFLOW__{section.upper()}__{key.upper()}"] = str(value)
    for name, value in env_map(values).items():
        if name.startswith("AIRFLOW__"):
            settings[name] = str(value)
    return settings


def walk(node: Any, path: str = ""):
    """Every (path, key, value) of the mappings in the tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, str(key), value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from walk(item, f"{path}[{i}]")


def worker_sets(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The Celery worker deployments the chart renders: the default set (unless disabled) and each named
    set, every one with its effective args/replicas (a set overrides what it names)."""
    celery = dig(values, "workers", "celery") or {}
    parent = {
        "name": "default",
        "args": celery.get("args") or dig(values, "workers", "args"),
        "replicas": celery.get("replicas", dig(values, "workers", "replicas")),
    }
    sets = [parent] if celery.get("enableDefault", True) else []
    for named in celery.get("sets") or []:
        sets.append({**parent, **named})
    return sets


def worker_command(worker: dict[str, Any]) -> list[str]:
    args = worker["args"]
    assert args and args[:2] == ["bash", "-c"], f"worker {worker['name']}: args {args!r}"
    return shlex.split(args[2])


def option(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} once in {argv}"
    return argv[argv.index(name) + 1]


def compose_default(text: str) -> str:
    """`${VAR:-default}` -> default; anything else as it is."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", text)
    return match.group(1) if match else text


def readme_secret_commands(readme: str) -> dict[str, str]:
    """`kubectl create secret generic NAME ...` commands of the README's shell blocks, by Secret name."""
    commands: dict[str, str] = {}
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.DOTALL)
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            match = re.match(r"\s*kubectl create secret generic ([a-z0-9.-]+)\s", line + " ")
            if match:
                commands[match.group(1)] = line
    return commands


def secret_names_in_values(values: dict[str, Any]) -> set[str]:
    names = {dig(values, *path) for path in CHART_SECRETS}
    for _, key, value in walk(values):
        if key == "secretName" and isinstance(value, str):
            names.add(value)
    for entry in yaml.safe_load(values.get("extraEnvFrom") or "[]") or []:
        if "secretRef" in entry:
            names.add(entry["secretRef"]["name"])
    names.discard(None)
    return names


# ------------------------------------------------------------------------------------------- tests


def test_values_file_parses_and_says_what_it_was_written_for(values):
    head = VALUES_FILE.read_text().split("\n\n", 1)[0]
    assert re.search(r"chart 1\.\d+", head), "the header names the chart version the keys target"
    assert "NOT RENDERED" in head and "helm template" in head
    for key in ("executor", "images", "config", "env", "workers", "apiServer", "data"):
        assert key in values, f"values.yaml has no top-level {key!r}"


def test_no_literal_secret(values):
    problems = []
    for path, key, value in walk(values):
        if not SECRET_NAME.search(key) or REFERENCE_KEY.search(key):
            continue
        if value is None or isinstance(value, bool | dict | list) or value == "":
            continue  # absent, a switch, or a subtree walked on its own (e.g. a `secret:` volume)
        problems.append(f"{path}.{key} = {value!r}")
    for name, value in env_map(values).items():
        if SECRET_NAME.search(name) and value:
            problems.append(f"env {name} = {value!r}")
    for path, key, value in walk(values):
        if isinstance(value, str) and URL_CREDENTIAL.search(value):
            problems.append(f"{path}.{key}: credentials in a URL")
    assert not problems, "literal secrets in values.yaml:\n" + "\n".join(problems)


def test_chart_generated_or_inline_secrets_are_not_used(values):
    inline = [
        key for key in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey") if values.get(key)
    ]
    inline += [f"data.{key}" for key in ("metadataConnection", "resultBackendConnection", "brokerUrl")]
    inline = [key for key in inline if not key.startswith("data.") or dig(values, *key.split("."))]
    if dig(values, "redis", "password"):
        inline.append("redis.password")
    assert not inline, f"set these through a Secret name instead: {inline}"


def test_credentials_come_from_secrets(values):
    for path in CHART_SECRETS:
        assert dig(values, *path), f"{'.'.join(path)} is not set: the chart would generate or inline it"
    env_from = yaml.safe_load(values["extraEnvFrom"])
    assert [entry["secretRef"]["name"] for entry in env_from if "secretRef" in entry], (
        "the connections reach the containers through extraEnvFrom secretRef"
    )
    leaked = [name for name in env_map(values) if name.startswith(("SOURCE_", "TARGET_", "AIRFLOW_CONN_"))]
    assert not leaked, f"{leaked}: in `env` they would override the connections Secret"


def test_executor_settings_equal_celery_env(values):
    celery_env = read_env_file(CELERY_ENV_FILE)
    assert celery_env, f"{CELERY_ENV_FILE} is empty"
    effective = effective_airflow_settings(values)
    mismatched = {
        key: (value, effective.get(key)) for key, value in celery_env.items() if effective.get(key) != value
    }
    assert not mismatched, f"celery.env value vs values.yaml: {mismatched}"
    assert values["executor"] == "CeleryExecutor"
    core_executor = dig(values, "config", "core", "executor")
    assert core_executor in (None, values["executor"]), "config.core.executor contradicts `executor`"


def test_image_is_the_one_compose_builds(values, compose):
    image = compose_default(compose["x-airflow-common"]["image"])
    repository, _, tag = image.rpartition(":")
    for repo_key, tag_key in (
        (("images", "airflow", "repository"), ("images", "airflow", "tag")),
        (("defaultAirflowRepository",), ("defaultAirflowTag",)),
    ):
        repo = dig(values, *repo_key)
        assert repo == repository or repo.endswith("/" + repository), f"{'.'.join(repo_key)} = {repo}"
        assert str(dig(values, *tag_key)) == tag, f"{'.'.join(tag_key)} is not compose's tag {tag!r}"
    base = re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:([\d.]+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert base and str(values["airflowVersion"]) == base.group(1), "airflowVersion != the image's Airflow"


def test_telemetry_is_off(values, compose):
    env = env_map(values)
    compose_env = compose["x-airflow-env"]
    for name, off in TELEMETRY_OFF.items():
        assert env.get(name) == off, f"env {name} = {env.get(name)!r}, expected {off!r}"
        assert compose_env[name] == off, f"compose's {name} changed: update values.yaml too"
    assert effective_airflow_settings(values)["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
    assert dig(values, "statsd", "enabled") is False


def test_workers_serve_the_queues_of_compose_and_the_local_cluster(values, compose):
    workers = worker_sets(values)
    served: dict[str, int] = {}
    for worker in workers:
        argv = worker_command(worker)
        assert argv[:4] == ["exec", "airflow", "celery", "worker"], argv
        queues = option(argv, "--queues")
        if "queue" in worker and worker["name"] != "default":
            assert worker["queue"] == queues, f"set {worker['name']}: queue != --queues"
        served[queues] = served.get(queues, 0) + int(worker["replicas"])
    local = {}
    for worker in CELERY_WORKERS:
        local[worker.queues] = local.get(worker.queues, 0) + 1
    assert served == local == {"default,extract": 2, "dbt": 1}

    concurrency = {
        option(worker_command(w), "--queues"): option(worker_command(w), "--concurrency") for w in workers
    }
    for service in ("airflow-worker", "airflow-worker-dbt"):
        argv = shlex.split(compose["services"][service]["command"])
        queues = option(argv, "--queues")
        assert concurrency[queues] == compose_default(option(argv, "--concurrency")), service


def test_pools_are_created_by_the_migrate_job(values, compose, readme):
    job = values["migrateDatabaseJob"]
    script = job["args"][2]
    assert job["args"][:2] == ["bash", "-c"] and "airflow db migrate" in script
    assert script.index("airflow db migrate") < script.index("airflow pools set")
    job_env = {entry["name"]: entry["value"] for entry in job["env"]}
    init_env = compose["services"]["airflow-init"]["environment"]
    for pool, slots in ((EXTRACT_POOL, "EXTRACT_POOL_SLOTS"), (DBT_POOL, "DBT_POOL_SLOTS")):
        assert f'airflow pools set {pool} "${{{slots}}}"' in script, pool
        assert job_env[slots] == compose_default(init_env[slots]), f"{slots} differs from compose"
        assert re.search(rf"airflow pools set {pool} \d+ ", readme), f"README documents {pool}"


def test_shared_volumes_are_mounted_where_the_etl_looks(values, readme):
    env = env_map(values)
    claims = {
        volume["name"]: volume["persistentVolumeClaim"]["claimName"]
        for volume in values["volumes"]
        if "persistentVolumeClaim" in volume
    }
    mounts = {mount["mountPath"]: mount["name"] for mount in values["volumeMounts"]}
    for variable in ("ETL_CONFIG_DIR", "DBT_DOCS_DIR"):
        assert mounts.get(env[variable]) in claims, f"{variable}={env[variable]} is not on a PVC"
    logs_claim = dig(values, "logs", "persistence", "existingClaim")
    assert dig(values, "logs", "persistence", "enabled") is True and logs_claim
    manifests = [
        doc for block in re.findall(r"<<'EOF'\n(.*?)\nEOF", readme, re.DOTALL) for doc in block.split("---")
    ]
    pvcs = {}
    for text in manifests:
        doc = yaml.safe_load(text) if "kind: PersistentVolumeClaim" in text else None
        if doc:
            pvcs[doc["metadata"]["name"]] = doc["spec"]["accessModes"]
    for claim in [*claims.values(), logs_claim]:
        assert pvcs.get(claim) == ["ReadWriteMany"], f"README creates no ReadWriteMany PVC {claim!r}"


def test_api_server_stays_inside_the_cluster(values):
    assert dig(values, "apiServer", "service", "type") == "ClusterIP"
    assert not dig(values, "ingress", "apiServer", "enabled"), "the Ingress example stays commented out"
    assert "ingress:" in VALUES_FILE.read_text(), "a commented Ingress example is in the file"


def test_every_secret_named_in_values_is_created_in_the_readme(values, readme):
    commands = readme_secret_commands(readme)
    missing = secret_names_in_values(values) - set(commands)
    assert not missing, f"values.yaml names Secrets the README does not create: {sorted(missing)}"
    for path, key in CHART_SECRETS.items():
        name = dig(values, *path)
        assert re.search(rf"--from-(literal|file)={re.escape(key)}=", commands[name]), (
            f"Secret {name} ({'.'.join(path)}) needs the key {key!r} in its kubectl command"
        )
    for entry in yaml.safe_load(values["extraEnvFrom"]):
        assert "--from-env-file" in commands[entry["secretRef"]["name"]]
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", readme, re.MULTILINE))
    assert listed >= CONNECTION_KEYS, f"README's env file lacks {sorted(CONNECTION_KEYS - listed)}"


def test_every_compose_setting_has_a_home(values, compose, readme):
    """Each variable of compose's x-airflow-env reaches the pods: `env`, `config`, a chart-managed Secret,
    or the connections Secret's env file in the README."""
    env = env_map(values)
    effective = effective_airflow_settings(values)
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", readme, re.MULTILINE))
    homeless = [
        name
        for name in compose["x-airflow-env"]
        if name not in env and name not in effective and name not in CHART_MANAGED and name not in listed
    ]
    assert not homeless, f"compose settings with no counterpart in the Helm deployment: {homeless}"


def test_readme_says_what_was_not_run(readme):
    section = readme.split("## What was not run", 1)
    assert len(section) == 2, "README has a 'What was not run' section"
    assert "helm" in section[1] and "cluster" in section[1].lower()
    assert "helm repo add apache-airflow https://airflow.apache.org" in readme
    assert re.search(r"helm upgrade --install \S+ apache-airflow/airflow", readme)
    assert "-f deploy/helm/values.yaml" in readme
