"""A throwaway local MariaDB (the OpenDental source) and PostgreSQL (analytics).

Both servers run as background processes on loopback ports, with their data directories under
`<root>` (git-ignored `.local/stack` by default). `up()` is idempotent: servers already running from
the same data directory are reused. `down()` stops them and leaves no process behind.

What `up()` creates:
  MariaDB   database `opendental` (sql_mode=''), user `etl_reader` (SELECT only) and `etl_admin`
            (all on opendental, used by the synthetic generator and tests)
  Postgres  database `analytics` owned by role `etl` (the loader and dbt connect as it); on request
            (`airflow_metadata_url`) Airflow's metadata database, owned by role `airflow`
With `mariadb_tls_dir` (ca.pem, server-cert.pem, server-key.pem) MariaDB also accepts TLS sessions.
The connection settings are written to `<env_file>` in the format `etl_pipeline.settings` reads.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from etl_pipeline.errors import LocalStackError
from etl_pipeline.settings import PROJECT_ROOT, read_env_file

MARIADB_BINARIES = ("mariadbd", "mariadb-install-db", "mariadb")
POSTGRES_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
INSTALL_HINT = {
    "mariadb": "install it with: apt-get install -y mariadb-server",
    "postgres": "install it with: apt-get install -y postgresql",
}


@dataclass(frozen=True)
class StackPaths:
    root: Path

    @property
    def mariadb_dir(self) -> Path:
        return self.root / "mariadb"

    @property
    def mariadb_data(self) -> Path:
        return self.mariadb_dir / "data"

    @property
    def mariadb_socket(self) -> Path:
        return self.mariadb_dir / "mysqld.sock"

    @property
    def mariadb_pid(self) -> Path:
        return self.mariadb_dir / "mysqld.pid"

    @property
    def mariadb_log(self) -> Path:
        return self.mariadb_dir / "error.log"

    @property
    def postgres_data(self) -> Path:
        return self.root / "postgres"

    @property
    def postgres_log(self) -> Path:
        return self.root / "postgres.log"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.env"


@dataclass(frozen=True)
class LocalStack:
    root: Path = PROJECT_ROOT / ".local" / "stack"
    mariadb_port: int = 13306
    postgres_port: int = 15432
    env_file: Path = PROJECT_ROOT / ".env"
    # a directory with ca.pem, server-cert.pem, server-key.pem: MariaDB then offers TLS (None: plain only);
    # read when up() starts the server, a server already running is reused as it is
    mariadb_tls_dir: Path | None = None

    @property
    def paths(self) -> StackPaths:
        return StackPaths(self.root)

    # ------------------------------------------------------------------ public

    def up(self) -> dict[str, str]:
        """Start (or reuse) both servers, create databases and users, write the env file."""
        mariadb_bin = find_mariadb()
        postgres_bin = find_postgres()
        self.root.mkdir(parents=True, exist_ok=True)
        creds = self._credentials()
        started: list[str] = []
        try:
            if not self._mariadb_running():
                _require_free_port(self.mariadb_port, "LOCAL_MARIADB_PORT")
                self._start_mariadb(mariadb_bin, creds)
                started.append("mariadb")
            if not self._postgres_running(postgres_bin):
                _require_free_port(self.postgres_port, "LOCAL_POSTGRES_PORT")
                self._start_postgres(postgres_bin, creds)
                started.append("postgres")
            self._provision_mariadb(creds)
            self._provision_postgres(postgres_bin, creds)
        except BaseException:
            # Leave no stray process from this call behind; data directories stay for the next try.
            if "mariadb" in started:
                self._stop_mariadb()
            if "postgres" in started:
                self._stop_postgres(postgres_bin)
            raise
        env = self.env_values(creds)
        self._write_env_file(env)
        return env

    def down(self) -> list[str]:
        """Stop both servers. Returns what was stopped."""
        stopped = []
        if self._stop_mariadb():
            stopped.append("mariadb")
        postgres_bin = find_postgres(required=False)
        if postgres_bin and self._stop_postgres(postgres_bin):
            stopped.append("postgres")
        return stopped

    def destroy(self) -> None:
        """Stop the servers and delete their data."""
        self.down()
        shutil.rmtree(self.root, ignore_errors=True)

    def status(self) -> dict[str, dict[str, object]]:
        """Running state and connection URLs (never passwords) of both servers."""
        creds = read_env_file(self.paths.secrets_file)
        postgres_bin = find_postgres(required=False)
        return {
            "mariadb": {
                "running": self._mariadb_running(),
                "url": f"mysql://{creds.get('SOURCE_USER', 'etl_reader')}@127.0.0.1:{self.mariadb_port}/opendental",
                "data_dir": str(self.paths.mariadb_data),
            },
            "postgres": {
                "running": bool(postgres_bin) and self._postgres_running(postgres_bin),
                "url": f"postgresql://etl@127.0.0.1:{self.postgres_port}/analytics",
                "data_dir": str(self.paths.postgres_data),
            },
        }

    def env_values(self, creds: dict[str, str] | None = None) -> dict[str, str]:
        """The settings (see etl_pipeline.settings) that point at this stack."""
        creds = creds or read_env_file(self.paths.secrets_file)
        return {
            "ETL_ENVIRONMENT": "local",
            "SOURCE_HOST": "127.0.0.1",
            "SOURCE_PORT": str(self.mariadb_port),
            "SOURCE_DATABASE": "opendental",
            "SOURCE_USER": "etl_reader",
            "SOURCE_PASSWORD": creds["SOURCE_PASSWORD"],
            "SOURCE_ADMIN_USER": "etl_admin",
            "SOURCE_ADMIN_PASSWORD": creds["SOURCE_ADMIN_PASSWORD"],
            "TARGET_HOST": "127.0.0.1",
            "TARGET_PORT": str(self.postgres_port),
            "TARGET_DATABASE": "analytics",
            "TARGET_USER": "etl",
            "TARGET_PASSWORD": creds["TARGET_PASSWORD"],
        }

    def airflow_metadata_url(self, database: str = "airflow") -> str:
        """Airflow's metadata database in this stack's PostgreSQL (created, owned by role `airflow`):
        the SQLAlchemy URL Airflow's components connect with. The stack must be up."""
        if not database.replace("_", "").isalnum():
            raise LocalStackError(f"Airflow metadata database name {database!r}: letters, digits and _ only")
        binaries, creds = find_postgres(), self._credentials()
        password = creds["AIRFLOW_METADATA_DB_PASSWORD"]
        self._psql_super(
            binaries,
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airflow') THEN
                CREATE ROLE airflow LOGIN PASSWORD '{password}';
              ELSE
                ALTER ROLE airflow LOGIN PASSWORD '{password}';
              END IF;
            END $$;
        """,
            creds,
        )
        exists = self._psql_super(binaries, f"SELECT 1 FROM pg_database WHERE datname = '{database}'", creds)
        if not exists.strip():
            self._psql_super(binaries, f"CREATE DATABASE {database} OWNER airflow", creds)
        return f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{self.postgres_port}/{database}"

    # ------------------------------------------------------------- credentials

    def _credentials(self) -> dict[str, str]:
        """Random passwords, made once per data directory and kept beside it (mode 0600)."""
        existing = read_env_file(self.paths.secrets_file)
        wanted = (
            "MARIADB_ROOT_PASSWORD",
            "SOURCE_PASSWORD",
            "SOURCE_ADMIN_PASSWORD",
            "POSTGRES_SUPERUSER_PASSWORD",
            "TARGET_PASSWORD",
            "AIRFLOW_METADATA_DB_PASSWORD",
        )
        if all(existing.get(k) for k in wanted):
            return existing
        creds = {k: existing.get(k) or secrets.token_urlsafe(18) for k in wanted}
        creds["SOURCE_USER"] = "etl_reader"
        _write_private(self.paths.secrets_file, creds)
        return creds

    def _write_env_file(self, env: dict[str, str]) -> None:
        _write_private(
            self.env_file, env, header="# Written by `python -m etl_pipeline.cli local up`: the local stack."
        )

    # ----------------------------------------------------------------- MariaDB

    def _mariadb_running(self) -> bool:
        pid = _read_pid(self.paths.mariadb_pid)
        return pid is not None and _alive(pid) and _port_open(self.mariadb_port)

    def _start_mariadb(self, binaries: dict[str, str], creds: dict[str, str]) -> None:
        p = self.paths
        p.mariadb_dir.mkdir(parents=True, exist_ok=True)
        # its own temporary directory: the machine's /tmp cleaners remove MariaDB's open #sql files
        (p.mariadb_dir / "tmp").mkdir(exist_ok=True)
        if not (p.mariadb_data / "mysql").is_dir():
            shutil.rmtree(p.mariadb_data, ignore_errors=True)
            _run(
                [
                    binaries["mariadb-install-db"],
                    "--no-defaults",
                    f"--datadir={p.mariadb_data}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    f"--user={_current_user()}",
                ],
                what="initialise the MariaDB data directory",
            )
        args = [
            binaries["mariadbd"],
            "--no-defaults",
            f"--datadir={p.mariadb_data}",
            f"--tmpdir={p.mariadb_dir / 'tmp'}",
            f"--port={self.mariadb_port}",
            "--bind-address=127.0.0.1",
            f"--socket={p.mariadb_socket}",
            f"--pid-file={p.mariadb_pid}",
            f"--log-error={p.mariadb_log}",
            f"--user={_current_user()}",
            "--sql-mode=",
            "--character-set-server=utf8mb3",
            "--collation-server=utf8mb3_general_ci",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=512M",
            "--max-allowed-packet=256M",
            "--max-connections=200",
            "--default-time-zone=+00:00",
            "--key-buffer-size=256M",
            "--tmp-table-size=256M",
            "--max-heap-table-size=512M",
        ]
        if self.mariadb_tls_dir:
            tls = Path(self.mariadb_tls_dir)
            args += [
                f"--ssl-ca={tls / 'ca.pem'}",
                f"--ssl-cert={tls / 'server-cert.pem'}",
                f"--ssl-key={tls / 'server-key.pem'}",
            ]
        _spawn_detached(args, p.mariadb_dir / "mysqld.stdout")
        _wait_for(
            lambda: _port_open(self.mariadb_port) and p.mariadb_socket.exists(),
            60,
            f"MariaDB did not start on port {self.mariadb_port}; see {p.mariadb_log}",
        )
        # A fresh install has a passwordless root reachable by socket; set its password once.
        self._mysql_root(
            f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{creds['MARIADB_ROOT_PASSWORD']}'",
            creds,
            allow_no_password=True,
        )

    def _mysql_root(self, sql: str, creds: dict[str, str], allow_no_password: bool = False) -> None:
        base = [
            find_mariadb()["mariadb"],
            "--no-defaults",
            f"--socket={self.paths.mariadb_socket}",
            "-uroot",
            "--batch",
        ]
        env = dict(os.environ, MYSQL_PWD=creds["MARIADB_ROOT_PASSWORD"])
        result = subprocess.run(base, input=sql, text=True, capture_output=True, env=env, check=False)
        if result.returncode != 0 and allow_no_password:
            env.pop("MYSQL_PWD")
            result = subprocess.run(base, input=sql, text=True, capture_output=True, env=env, check=False)
        if result.returncode != 0:
            raise LocalStackError(f"MariaDB setup failed: {_first_line(result.stderr)}")

    def _provision_mariadb(self, creds: dict[str, str]) -> None:
        reader, admin = creds["SOURCE_PASSWORD"], creds["SOURCE_ADMIN_PASSWORD"]
        self._mysql_root(
            f"""
            CREATE DATABASE IF NOT EXISTS opendental CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci;
            CREATE USER IF NOT EXISTS 'etl_reader'@'127.0.0.1' IDENTIFIED BY '{reader}';
            CREATE USER IF NOT EXISTS 'etl_reader'@'localhost' IDENTIFIED BY '{reader}';
            CREATE USER IF NOT EXISTS 'etl_admin'@'127.0.0.1' IDENTIFIED BY '{admin}';
            CREATE USER IF NOT EXISTS 'etl_admin'@'localhost' IDENTIFIED BY '{admin}';
            GRANT SELECT, SHOW VIEW ON opendental.* TO 'etl_reader'@'127.0.0.1', 'etl_reader'@'localhost';
            GRANT ALL PRIVILEGES ON *.* TO 'etl_admin'@'127.0.0.1', 'etl_admin'@'localhost';
            FLUSH PRIVILEGES;
        """,
            creds,
        )

    def _stop_mariadb(self) -> bool:
        pid = _read_pid(self.paths.mariadb_pid)
        if pid is None or not _alive(pid):
            return False
        os.kill(pid, signal.SIGTERM)
        _wait_for(lambda: not _alive(pid), 60, "MariaDB did not stop", kill_pid=pid)
        return True

    # ---------------------------------------------------------------- Postgres

    def _pg_run_as(self) -> list[str]:
        """PostgreSQL refuses to run as root: use the `postgres` system user then."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise LocalStackError(
                "running as root needs a 'postgres' system user for PostgreSQL; "
                "install it with: apt-get install -y postgresql"
            ) from None
        runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
        if not runuser:
            raise LocalStackError("running as root needs `runuser` (package util-linux) to start PostgreSQL")
        return [runuser, "-u", "postgres", "--"]

    def _postgres_running(self, binaries: dict[str, str]) -> bool:
        if not (self.paths.postgres_data / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            self._pg_run_as() + [binaries["pg_ctl"], "status", "-D", str(self.paths.postgres_data)],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0 and _port_open(self.postgres_port)

    def _start_postgres(self, binaries: dict[str, str], creds: dict[str, str]) -> None:
        p = self.paths
        run_as = self._pg_run_as()
        if not (p.postgres_data / "PG_VERSION").exists():
            shutil.rmtree(p.postgres_data, ignore_errors=True)
            p.postgres_data.mkdir(parents=True)
            pwfile = self.root / ".pgpass.init"
            pwfile.write_text(creds["POSTGRES_SUPERUSER_PASSWORD"] + "\n")
            if run_as:
                shutil.chown(p.postgres_data, "postgres", "postgres")
                shutil.chown(pwfile, "postgres", "postgres")
            try:
                _run(
                    run_as
                    + [
                        binaries["initdb"],
                        "-D",
                        str(p.postgres_data),
                        "-U",
                        "postgres",
                        "--auth=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ],
                    what="initialise the PostgreSQL data directory",
                )
            finally:
                pwfile.unlink(missing_ok=True)
        p.postgres_log.touch()
        if run_as:
            shutil.chown(p.postgres_log, "postgres", "postgres")
            os.chmod(self.root, 0o755)
        # Throwaway data: durability settings off for speed (an OS crash loses it, which is fine here).
        # wal_level=minimal (no replicas): a full refresh's COPY into the table it created in the same
        # transaction writes no WAL, as PostgreSQL's "Populating a Database" describes.
        # Index builds after a full load run with one worker per two cores: PostgreSQL's default of two
        # workers on a 2-core machine made the 2M-row primary key slower (1.15 s) than one (0.95 s).
        index_workers = max(1, min(4, (os.cpu_count() or 2) // 2))
        options = (
            f"-p {self.postgres_port} -k {p.postgres_data} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c wal_level=minimal -c max_wal_senders=0 "
            f"-c max_parallel_maintenance_workers={index_workers} "
            "-c shared_buffers=512MB -c maintenance_work_mem=512MB -c work_mem=64MB "
            "-c max_wal_size=4GB -c max_connections=200 -c checkpoint_timeout=30min"
        )
        _run(
            run_as
            + [
                binaries["pg_ctl"],
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(p.postgres_data),
                "-l",
                str(p.postgres_log),
                "-o",
                options,
            ],
            what=f"start PostgreSQL on port {self.postgres_port} (see {p.postgres_log})",
        )

    def _psql_super(
        self, binaries: dict[str, str], sql: str, creds: dict[str, str], database: str = "postgres"
    ) -> str:
        env = dict(os.environ, PGPASSWORD=creds["POSTGRES_SUPERUSER_PASSWORD"])
        result = subprocess.run(
            [
                binaries["psql"],
                "-h",
                "127.0.0.1",
                "-p",
                str(self.postgres_port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tA",
                "-q",
            ],
            input=sql,
            text=True,
            capture_output=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise LocalStackError(f"PostgreSQL setup failed: {_first_line(result.stderr)}")
        return result.stdout

    def _provision_postgres(self, binaries: dict[str, str], creds: dict[str, str]) -> None:
        target = creds["TARGET_PASSWORD"]
        self._psql_super(
            binaries,
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'etl') THEN
                CREATE ROLE etl LOGIN PASSWORD '{target}';
              ELSE
                ALTER ROLE etl LOGIN PASSWORD '{target}';
              END IF;
            END $$;
        """,
            creds,
        )
        exists = self._psql_super(binaries, "SELECT 1 FROM pg_database WHERE datname = 'analytics'", creds)
        if not exists.strip():
            self._psql_super(binaries, "CREATE DATABASE analytics OWNER etl", creds)
        self._psql_super(binaries, "ALTER SCHEMA public OWNER TO etl", creds, database="analytics")

    def _stop_postgres(self, binaries: dict[str, str]) -> bool:
        if not (self.paths.postgres_data / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            self._pg_run_as()
            + [
                binaries["pg_ctl"],
                "stop",
                "-w",
                "-t",
                "60",
                "-m",
                "fast",
                "-D",
                str(self.paths.postgres_data),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0


# --------------------------------------------------------------------- helpers


def find_mariadb() -> dict[str, str]:
    found = {}
    for name in MARIADB_BINARIES:
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if not path:
            raise LocalStackError(f"{name} not found: {INSTALL_HINT['mariadb']}")
        found[name] = path
    return found


def find_postgres(required: bool = True) -> dict[str, str] | None:
    for directory in POSTGRES_BIN_DIRS:
        if all(Path(directory, b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            psql = shutil.which("psql") or str(Path(directory, "psql"))
            return {"initdb": f"{directory}/initdb", "pg_ctl": f"{directory}/pg_ctl", "psql": psql}
    if required:
        raise LocalStackError(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found in "
            f"{', '.join(POSTGRES_BIN_DIRS)}: {INSTALL_HINT['postgres']}"
        )
    return None


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _require_free_port(port: int, env_name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: sockets of a just-stopped server in TIME_WAIT do not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise LocalStackError(
                f"port {port} on 127.0.0.1 is already in use by another process; "
                f"free it or choose another with {env_name}=<port>"
            ) from None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _spawn_detached(args: list[str], stdout_path: Path) -> None:
    with open(stdout_path, "ab") as out:
        subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def _wait_for(check, seconds: float, message: str, kill_pid: int | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    if kill_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(kill_pid, signal.SIGKILL)
        return
    raise LocalStackError(message)


def _run(args: list[str], what: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LocalStackError(f"could not {what}: {_first_line(result.stderr or result.stdout)}")


def _first_line(text: str) -> str:
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return lines[0].strip() if lines else "no output"


def _write_private(path: Path, values: dict[str, str], header: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        if header:
            fh.write(header + "\n")
        for key, value in values.items():
            fh.write(f"{key}={value}\n")
    os.replace(tmp, path)


def scratch_stack(scratch_id: int, **options) -> LocalStack:
    """A throwaway stack for a benchmark or a special test: `.local/scratch-<id>`, MariaDB on 24306+10*id,
    PostgreSQL on 26432+10*id. Below Linux's ephemeral ports (32768 and up), where any client
    connection's own port could be holding the port we want."""
    root = PROJECT_ROOT / ".local" / f"scratch-{scratch_id}"
    return LocalStack(
        root=root,
        mariadb_port=24306 + 10 * scratch_id,
        postgres_port=26432 + 10 * scratch_id,
        env_file=root / "scratch.env",
        **options,
    )


def stack_from_env() -> LocalStack:
    """The default stack, with ports overridable by LOCAL_MARIADB_PORT / LOCAL_POSTGRES_PORT."""
    kwargs = {}
    if os.environ.get("LOCAL_MARIADB_PORT"):
        kwargs["mariadb_port"] = int(os.environ["LOCAL_MARIADB_PORT"])
    if os.environ.get("LOCAL_POSTGRES_PORT"):
        kwargs["postgres_port"] = int(os.environ["LOCAL_POSTGRES_PORT"])
    if os.environ.get("LOCAL_STACK_DIR"):
        kwargs["root"] = Path(os.environ["LOCAL_STACK_DIR"])
    return LocalStack(**kwargs)
