"""The production docker-compose.yml: valid for compose, consistent, and safe by default.

No Docker engine is needed: `docker-compose config` validates and interpolates the file, the rest is
read with PyYAML. The nginx proxy that guards the dbt docs is run for real against a stub API server
(skipped when nginx is not installed).
"""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "deploy" / "nginx" / "airflow.conf"

# The services deploy/README.md and the project README name.
README_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
    "redis",
    "airflow-metadata-db",
    "analytics-db",
    "source-mariadb",
}
ONE_SHOT = {"airflow-init", "source-seed"}
DATABASES = {"airflow-metadata-db", "analytics-db", "redis", "source-mariadb"}
PROJECT_IMAGE_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-dbt",
    "source-seed",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|_KEY$|TOKEN")
VAR_USE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?])[^}]*)?\}")


# ------------------------------------------------------------------------------------------ helpers


def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict:
    return raw_compose()["services"]


def compose_text_without_escapes() -> str:
    """The file with `$$` (a literal dollar for the container's shell) removed, comments dropped."""
    lines = [
        line.split(" #", 1)[0]
        for line in COMPOSE_FILE.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    return "\n".join(lines).replace("$$", "")


def var_uses() -> list[tuple[str, str]]:
    """(name, modifier) for every ${VAR...} in the compose file; modifier like ':?msg', ':-default', ''."""
    return [(m.group(1), m.group(2) or "") for m in VAR_USE.finditer(compose_text_without_escapes())]


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def required_vars() -> set[str]:
    return {name for name, modifier in var_uses() if modifier.startswith((":?", "?"))}


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], check=False, capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def filled_env() -> dict[str, str]:
    """.env.example with every empty required value given a distinct placeholder."""
    values = env_example()
    for name in required_vars():
        if not values.get(name):
            values[name] = "x" + name.lower().replace("_", "")
    return values


def run_config(env_file: Path, *extra: str) -> subprocess.CompletedProcess:
    command = compose_command()
    if command is None:
        pytest.skip(
            "docker-compose is not installed (Debian package docker-compose; `make setup` installs it)"
        )
    # A clean environment: neither this shell's variables nor the project's .env may leak in.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(env_file.parent)}
    return subprocess.run(
        [*command, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *extra, "config"],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """`docker-compose config` output for a complete .env, with the demo profile enabled."""
    env_file = write_env(tmp_path_factory.mktemp("compose") / "complete.env", filled_env())
    result = run_config(env_file, "--profile", "demo")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


# --------------------------------------------------------------------------- compose validates it


def test_compose_config_accepts_a_complete_env(rendered):
    assert set(rendered["services"]) >= README_SERVICES
    # Placeholders reached the containers: interpolation really happened.
    api_env = rendered["services"]["airflow-apiserver"]["environment"]
    assert api_env["AIRFLOW__CORE__FERNET_KEY"] == filled_env()["AIRFLOW_FERNET_KEY"]
    assert api_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_env_example_as_shipped_is_refused(tmp_path):
    result = run_config(ENV_EXAMPLE)
    assert result.returncode != 0
    assert "in .env" in result.stderr


@pytest.mark.parametrize("name", sorted(required_vars()))
def test_each_missing_secret_stops_compose_with_its_name(tmp_path, name):
    values = filled_env()
    values.pop(name)
    result = run_config(write_env(tmp_path / "partial.env", values))
    assert result.returncode != 0
    assert f"set {name} in .env" in result.stderr


def test_required_secrets_cover_every_credential():
    assert {
        "AIRFLOW_METADATA_DB_PASSWORD",
        "REDIS_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_ADMIN_PASSWORD",
        "SOURCE_PASSWORD",
        "TARGET_PASSWORD",
        "ANALYTICS_DB_ADMIN_PASSWORD",
        "AIRFLOW_CONN_OPENDENTAL_SOURCE",
        "AIRFLOW_CONN_ANALYTICS_WAREHOUSE",
    } <= required_vars()


# ------------------------------------------------------------------------------- services, images


def test_readme_services_exist_and_source_is_demo_only():
    svc = services()
    assert set(svc) >= README_SERVICES
    for name in ("source-mariadb", "source-seed"):
        assert svc[name].get("profiles") == ["demo"], name
    assert not [
        name for name, s in svc.items() if s.get("profiles") and name not in ("source-mariadb", "source-seed")
    ]


def test_project_image_is_built_once_and_shared():
    svc = services()
    builders = {name for name, s in svc.items() if "build" in s}
    assert builders == PROJECT_IMAGE_SERVICES
    images = {svc[name]["image"] for name in PROJECT_IMAGE_SERVICES}
    builds = {repr(svc[name]["build"]) for name in PROJECT_IMAGE_SERVICES}
    assert len(images) == 1 and len(builds) == 1
    for name, s in svc.items():
        if name not in PROJECT_IMAGE_SERVICES:
            assert s["image"] not in images, f"{name} reuses the project image without building it"


def test_dockerfile_extends_official_airflow_and_builds_the_manifest():
    text = DOCKERFILE.read_text()
    assert "apache/airflow:3.3.2-python3.11" in text
    assert "uv.lock" in text and "uv export --frozen" in text
    assert "dbt parse" in text and "test -s target/manifest.json" in text
    for line in text.splitlines():
        if line.startswith("COPY "):
            sources = [word for word in line.split()[1:] if not word.startswith("--")][:-1]
            for path in sources:
                assert (ROOT / path).exists() or path == "README.md", f"Dockerfile copies missing {path}"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".venv", ".local", ".git", "deploy/certs", "dbt_dental_models/target"} <= ignored


def test_named_volumes_are_declared_and_bind_sources_exist():
    compose = raw_compose()
    declared = set(compose["volumes"])
    used = set()
    for name, s in compose["services"].items():
        for entry in s.get("volumes", []):
            source = entry.split(":", 1)[0]
            if source.startswith(("./", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            elif source.startswith("${"):
                continue  # a host directory chosen in .env (ETL_CERTS_DIR); its default is checked below
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    assert (ROOT / "deploy" / "certs").is_dir()


# --------------------------------------------------------------------------------- env and secrets


def test_every_variable_is_documented_in_env_example_and_vice_versa():
    used = {name for name, _ in var_uses()}
    documented = set(env_example())
    assert used - documented == set(), "used in docker-compose.yml but missing from .env.example"
    assert documented - used == set(), "listed in .env.example but not used by docker-compose.yml"


def test_no_secret_has_a_literal_default():
    for name, modifier in var_uses():
        if SECRET_NAME.search(name):
            assert modifier in ("", ":-") or modifier.startswith(":?"), f"{name} has a default: {modifier}"
    for name, value in env_example().items():
        if SECRET_NAME.search(name):
            assert value == "", f".env.example ships a value for {name}"


def test_no_credential_is_written_into_the_file():
    for name, s in services().items():
        env = s.get("environment", {})
        assert isinstance(env, dict), f"{name}: use the mapping form for environment"
        for key, value in env.items():
            if SECRET_NAME.search(key) and key not in ("MARIADB_RANDOM_ROOT_PASSWORD",):
                assert "${" in str(value), f"{name}.{key} is a literal"
            if "://" in str(value) and "@" in str(value):
                assert "${" in str(value), f"{name}.{key} has literal credentials in a URL"


def test_ui_requires_login_and_admin_comes_from_env():
    svc = services()
    env = svc["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    init_env = svc["airflow-init"]["environment"]
    assert init_env["_AIRFLOW_WWW_USER_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert "SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in COMPOSE_FILE.read_text()


def test_the_connections_reach_every_airflow_container_and_nothing_else_defines_them():
    for name in PROJECT_IMAGE_SERVICES:
        env = services()[name]["environment"]
        for key in ("AIRFLOW_CONN_OPENDENTAL_SOURCE", "AIRFLOW_CONN_ANALYTICS_WAREHOUSE"):
            assert env.get(key, "").startswith(f"${{{key}:?"), f"{name} lacks {key}"
        # TLS lives in the connections' extras: no second, competing definition of either end
        competing = [
            key
            for key in env
            if key in ("SOURCE_URL", "TARGET_URL", "PGSSLROOTCERT")
            or key.startswith(("SOURCE_HOST", "SOURCE_PORT", "SOURCE_SSL", "TARGET_HOST", "TARGET_SSL"))
        ]
        assert competing == [], f"{name}: {competing}"


def test_telemetry_is_off():
    env = services()["airflow-worker"]["environment"]
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "False"
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"


# ------------------------------------------------------------------- health, restarts, ports, scale


def test_databases_and_long_running_services_have_healthchecks():
    for name, s in services().items():
        if name not in ONE_SHOT:
            assert s.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in DATABASES:
        assert services()[name]["healthcheck"]["test"]


def test_restart_policies():
    for name, s in services().items():
        expected = {"no"} if name in ONE_SHOT else {"always", "unless-stopped"}
        assert s.get("restart") in expected, f"{name}: restart={s.get('restart')!r}"


def test_airflow_waits_for_init_and_healthy_databases():
    for name in PROJECT_IMAGE_SERVICES - ONE_SHOT:
        deps = services()[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["airflow-metadata-db"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name


def test_only_loopback_ports_are_published(rendered):
    published = {}
    for name, s in rendered["services"].items():
        for port in s.get("ports", []):
            if isinstance(port, dict):
                host_ip = port.get("host_ip", "")
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else ""
            published.setdefault(name, []).append(host_ip)
    assert set(published) <= {"airflow-proxy", "analytics-db"}, published
    for name, ips in published.items():
        assert all(ip == "127.0.0.1" for ip in ips), f"{name} publishes on {ips}"
    # The databases' loopback binding is fixed in the file, not left to .env.
    assert services()["analytics-db"]["ports"][0].startswith("127.0.0.1:")


def test_workers_scale_and_queues_match_pools():
    svc = services()
    assert not [name for name, s in svc.items() if "container_name" in s or "hostname" in s]
    worker = svc["airflow-worker"]
    assert "ports" not in worker
    assert re.search(r"--queues default,extract\b", worker["command"])
    assert re.search(r"--queues dbt\b", svc["airflow-worker-dbt"]["command"])
    init = "\n".join(svc["airflow-init"]["command"])
    assert "airflow pools set extract_pool" in init and "airflow pools set dbt_pool" in init
    header = COMPOSE_FILE.read_text().split("\nx-", 1)[0]
    for word in ('pool="extract_pool"', 'queue="extract"', 'pool="dbt_pool"', 'queue="dbt"'):
        assert word in header


def test_executor_settings_have_one_home_shared_with_the_local_cluster(rendered):
    """airflow/celery.env reaches every Airflow container, and the local cluster's workers serve the
    queues compose's workers serve (etl_pipeline.airflow_cluster)."""
    from etl_pipeline.airflow_cluster import CELERY_ENV_FILE, CELERY_WORKERS
    from etl_pipeline.settings import read_env_file

    celery_settings = read_env_file(CELERY_ENV_FILE)
    assert celery_settings["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "AIRFLOW__CORE__EXECUTOR" not in raw_compose()["x-airflow-env"], "a second home for it"
    for name in PROJECT_IMAGE_SERVICES - {"source-seed"}:
        environment = rendered["services"][name]["environment"]
        assert {k: environment.get(k) for k in celery_settings} == celery_settings, name
    compose_queues = {
        re.search(r"--queues (\S+)", services()[name]["command"]).group(1)
        for name in ("airflow-worker", "airflow-worker-dbt")
    }
    assert {worker.queues for worker in CELERY_WORKERS} == compose_queues


def test_notification_settings_reach_every_airflow_container(rendered):
    notify_keys = {"SLACK_WEBHOOK_URL", "SMTP_HOST", "SMTP_PASSWORD", "SMTP_SSL_CA", "NOTIFY_EMAIL_TO"}
    for name in PROJECT_IMAGE_SERVICES - {"source-seed"}:
        assert notify_keys <= set(rendered["services"][name]["environment"]), name


def test_shell_scripts_parse():
    for script in sorted((ROOT / "deploy").rglob("*.sh")):
        result = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


# ------------------------------------------------------------------- the proxy guarding dbt docs


class _StubAirflow(http.server.BaseHTTPRequestHandler):
    """Stands in for the API server: /ui/auth/me knows one session cookie and one bearer token."""

    def do_GET(self):
        if self.path == "/ui/auth/me":
            ok = (
                "_token=good" in (self.headers.get("Cookie") or "")
                or self.headers.get("Authorization") == "Bearer good"
            )
            self._reply(200 if ok else 401, b'{"id": "admin"}' if ok else b"Not authenticated")
        else:
            self._reply(200, f"airflow:{self.path}".encode())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def proxy(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed (Debian package nginx)")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubAirflow)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = _free_port()
    server_conf = NGINX_CONF.read_text()
    assert "listen 8080;" in server_conf and "http://airflow-apiserver:8080" in server_conf
    server_conf = server_conf.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace(
        "http://airflow-apiserver:8080", f"http://127.0.0.1:{upstream.server_port}"
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        "daemon off;\nworker_processes 1;\npid nginx.pid;\nerror_log logs/error.log;\n"
        "events { worker_connections 64; }\n"
        "http {\n access_log off;\n client_body_temp_path tmp; proxy_temp_path tmp;\n"
        " fastcgi_temp_path tmp; uwsgi_temp_path tmp; scgi_temp_path tmp;\n"
        f"{server_conf}\n}}\n"
    )
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"nginx did not start: {process.stderr.read() if process.poll() is not None else ''}"
                    )
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()


def _get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_proxy_hides_dbt_docs_without_a_session(proxy):
    status, _ = _get(f"{proxy}/cosmos/dbt_dental_models/dbt_docs_index.html")
    assert status == 401
    status, _ = _get(f"{proxy}/cosmos/dbt_dental_models/catalog.json", {"Cookie": "_token=forged"})
    assert status == 401


def test_proxy_serves_dbt_docs_to_a_logged_in_user(proxy):
    status, body = _get(
        f"{proxy}/cosmos/dbt_dental_models/dbt_docs_index.html", {"Cookie": "a=1; _token=good"}
    )
    assert (status, body) == (200, "airflow:/cosmos/dbt_dental_models/dbt_docs_index.html")
    status, body = _get(f"{proxy}/cosmos/dbt_dental_models/manifest.json", {"Authorization": "Bearer good"})
    assert (status, body) == (200, "airflow:/cosmos/dbt_dental_models/manifest.json")


def test_proxy_passes_the_ui_and_api_through(proxy):
    # Airflow itself asks for the login on these; the proxy only forwards them unchanged.
    assert _get(f"{proxy}/api/v2/version?x=1") == (200, "airflow:/api/v2/version?x=1")
    assert _get(f"{proxy}/") == (200, "airflow:/")
    assert _get(f"{proxy}/_proxy_health") == (200, "ok\n")


def _source_mariadb_init(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Source the demo MariaDB init script the way the image entrypoint does, printing its SQL."""
    script = 'docker_process_sql() { echo "args: $*"; cat; }; source "$1"'
    init = ROOT / "deploy" / "source-mariadb" / "init-etl-users.sh"
    return subprocess.run(
        ["bash", "-ec", script, "init", str(init)],
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_demo_mariadb_init_creates_a_read_only_user_and_an_admin():
    result = _source_mariadb_init(
        {
            "MARIADB_DATABASE": "opendental",
            "SOURCE_USER": "etl_reader",
            "SOURCE_PASSWORD": "r3ad",
            "SOURCE_ADMIN_USER": "etl_admin",
            "SOURCE_ADMIN_PASSWORD": "adm1n",
        }
    )
    assert result.returncode == 0, result.stderr
    sql = result.stdout
    assert "args: --database=mysql" in sql
    assert "CREATE USER IF NOT EXISTS 'etl_reader'@'%' IDENTIFIED BY 'r3ad';" in sql
    assert "GRANT SELECT, SHOW VIEW ON `opendental`.* TO 'etl_reader'@'%';" in sql
    assert "GRANT ALL PRIVILEGES ON *.* TO 'etl_admin'@'%';" in sql
    assert "etl_reader'@'%' IDENTIFIED BY 'r3ad';\n" in sql and "GRANT ALL" not in sql.split("etl_admin")[0]


def test_demo_mariadb_init_refuses_an_empty_password():
    result = _source_mariadb_init(
        {
            "MARIADB_DATABASE": "opendental",
            "SOURCE_USER": "etl_reader",
            "SOURCE_PASSWORD": "r3ad",
            "SOURCE_ADMIN_USER": "etl_admin",
        }
    )
    assert result.returncode != 0
    assert "set SOURCE_PASSWORD and SOURCE_ADMIN_PASSWORD in .env" in result.stderr
    assert "CREATE USER" not in result.stdout
