"""Settings parsing (separate variables and connection URLs) and secret redaction."""

from __future__ import annotations

import logging

import pytest

from etl_pipeline.db import AVAILABLE_DRIVERS, connect_source, connect_target
from etl_pipeline.errors import ConfigError, ConnectionFailed
from etl_pipeline.redact import install_log_filter, redact, register_secret
from etl_pipeline.settings import MySQLSettings, PostgresSettings, load_settings, read_env_file


def test_env_file_parsing(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\nexport A=1\nB='two words'\n\nC=\"x=y\"\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "x=y"}


def test_bad_env_file_line_is_named(tmp_path):
    path = tmp_path / ".env"
    path.write_text("A=1\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"\.env:2: expected KEY=VALUE"):
        read_env_file(path)


def test_bad_port_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("ETL_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("SOURCE_PORT", "33o6")
    with pytest.raises(ConfigError, match="SOURCE_PORT='33o6' is not a port number"):
        load_settings()


def test_redaction_masks_registered_secrets_urls_and_assignments():
    register_secret("s3cr3t-Pa55")
    text = "login failed for s3cr3t-Pa55 at postgresql://etl:hunter22@db:5432/x; password=abc123 PWD: 'q'"
    cleaned = redact(text)
    assert "s3cr3t-Pa55" not in cleaned and "hunter22" not in cleaned and "abc123" not in cleaned
    assert "postgresql://etl:***@db:5432/x" in cleaned


def test_log_filter_scrubs_messages(caplog):
    register_secret("Another-Secret-9")
    logger = logging.getLogger("redaction-test")
    install_log_filter(logger)
    with caplog.at_level(logging.INFO, logger="redaction-test"):
        logger.info("connecting with %s", "Another-Secret-9")
    assert "Another-Secret-9" not in caplog.text and "***" in caplog.text


@pytest.mark.parametrize("driver", AVAILABLE_DRIVERS)
def test_connection_errors_name_the_server_not_the_password(driver):
    password = "Wr0ng-Password-77"
    register_secret(password)
    source = MySQLSettings(
        host="127.0.0.1", port=1, database="opendental", user="etl_reader", password=password, driver=driver
    )
    with pytest.raises(ConnectionFailed) as excinfo:
        connect_source(source, connect_timeout=2)
    assert "mysql://etl_reader@127.0.0.1:1/opendental" in str(excinfo.value)
    assert password not in str(excinfo.value)
    target = PostgresSettings(host="127.0.0.1", port=1, database="analytics", user="etl", password=password)
    with pytest.raises(ConnectionFailed) as excinfo:
        connect_target(target, connect_timeout=2)
    assert "postgresql://etl@127.0.0.1:1/analytics" in str(excinfo.value)
    assert password not in str(excinfo.value)


@pytest.mark.parametrize("driver", AVAILABLE_DRIVERS)
def test_wrong_password_message_does_not_echo_it(settings, driver):
    bad = MySQLSettings(
        host=settings.source.host,
        port=settings.source.port,
        database="opendental",
        user="etl_reader",
        password="Not-The-Password-1",
        driver=driver,
    )
    register_secret("Not-The-Password-1")
    with pytest.raises(ConnectionFailed, match="Access denied") as excinfo:
        connect_source(bad)
    assert "Not-The-Password-1" not in str(excinfo.value)


# --- connection URLs (SOURCE_URL / TARGET_URL, parsed and rendered with SQLAlchemy's URL) ---

HARD_PASSWORD = "p@ss:w/rd%41-x"  # every character a URL must encode, and a %41 that must stay as it is
ENCODED = "p%40ss%3Aw%2Frd%2541-x"


TIMEOUT_SETTINGS = (
    "SOURCE_CONNECT_TIMEOUT",
    "SOURCE_READ_TIMEOUT",
    "SOURCE_WRITE_TIMEOUT",
    "SOURCE_CHUNK_ROWS",
    "SOURCE_CHUNK_SECONDS",
    "TARGET_CONNECT_TIMEOUT",
    "TARGET_STATEMENT_TIMEOUT",
    "TARGET_LOCK_TIMEOUT",
    "TARGET_IDLE_TIMEOUT",
    "TARGET_STALL_TIMEOUT",
    "TARGET_TABLE_LOCK_WAIT",
)


def _url_settings(monkeypatch, tmp_path, **env):
    monkeypatch.setenv("ETL_ENV_FILE", str(tmp_path / "none.env"))
    for key in (
        "SOURCE_URL",
        "TARGET_URL",
        "SOURCE_DRIVER",
        "SOURCE_SSL_MODE",
        "SOURCE_SSL_CA",
        "TARGET_SSLMODE",
        *TIMEOUT_SETTINGS,
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_source_url_gives_every_part_and_the_password_round_trips(monkeypatch, tmp_path):
    s = _url_settings(
        monkeypatch,
        tmp_path,
        SOURCE_URL=f"mysql+pymysql://reader:{ENCODED}@db.clinic:3307/od?ssl_mode=required&ssl_ca=/certs/ca.pem",
        SOURCE_HOST="ignored-host",
        SOURCE_PASSWORD="ignored-password",
    )
    assert (s.source.host, s.source.port, s.source.database, s.source.user) == (
        "db.clinic",
        3307,
        "od",
        "reader",
    )
    assert s.source.password == HARD_PASSWORD
    assert (s.source.ssl_mode, s.source.ssl_ca, s.source.driver) == ("REQUIRED", "/certs/ca.pem", "pymysql")
    # the settings' own URL encodes it again, and parses back to the same password
    from sqlalchemy.engine import make_url

    rendered = s.source.url.render_as_string(hide_password=False)
    assert ENCODED in rendered and make_url(rendered).password == HARD_PASSWORD
    assert s.source.display == "mysql://reader@db.clinic:3307/od"


def test_target_url_and_separate_password(monkeypatch, tmp_path):
    s = _url_settings(
        monkeypatch,
        tmp_path,
        TARGET_URL="postgresql://etl@pg.clinic/analytics?sslmode=verify-full&sslrootcert=/certs/pg.pem",
        TARGET_PASSWORD=HARD_PASSWORD,
        TARGET_PORT="6543",
    )
    t = s.target
    assert (t.host, t.port, t.database, t.user, t.password) == (
        "pg.clinic",
        6543,
        "analytics",
        "etl",
        HARD_PASSWORD,
    )
    assert (t.sslmode, t.sslrootcert) == ("verify-full", "/certs/pg.pem")
    assert t.display == "postgresql://etl@pg.clinic:6543/analytics"


@pytest.mark.parametrize(
    "env,message",
    [
        ({"SOURCE_URL": "not a url"}, "SOURCE_URL is not a URL like mysql://"),
        ({"SOURCE_URL": "oracle://u@h/db"}, "SOURCE_URL: scheme 'oracle' is not one of mysql, mariadb"),
        ({"SOURCE_URL": "mysql+odbc://u@h/db"}, "SOURCE_URL: driver 'odbc' is not one of"),
        (
            {"SOURCE_URL": "mysql://u@h/db?sslmode=x"},
            "SOURCE_URL: unknown parameter 'sslmode' \\(known: ssl_mode",
        ),
        ({"SOURCE_URL": "mysql://u@h:33o6/db"}, "SOURCE_URL is not a URL"),
        ({"SOURCE_URL": "mysql://u@h/db?ssl_mode=ALWAYS"}, "SOURCE_URL's ssl_mode='ALWAYS' is not one of"),
        (
            {"SOURCE_URL": "mysql+pymysql://u@h/db", "SOURCE_DRIVER": "mysqlclient"},
            "disagrees with SOURCE_URL",
        ),
        ({"SOURCE_DRIVER": "odbc"}, "SOURCE_DRIVER='odbc' is not one of mysqlclient, pymysql"),
        ({"TARGET_URL": "postgresql://u@h:99999/db"}, "TARGET_URL's port=99999 is outside 1-65535"),
        (
            {"TARGET_URL": "postgresql+asyncpg://u@h/db"},
            "TARGET_URL: driver 'asyncpg' is not one of psycopg2",
        ),
        ({"SOURCE_READ_TIMEOUT": "ten"}, "SOURCE_READ_TIMEOUT='ten' is not a number of seconds"),
        ({"TARGET_LOCK_TIMEOUT": "0"}, "TARGET_LOCK_TIMEOUT='0' must be more than 0 seconds"),
        ({"SOURCE_CHUNK_ROWS": "-5"}, "SOURCE_CHUNK_ROWS='-5' is not a whole number of at least 0"),
    ],
)
def test_bad_connection_settings_are_config_errors_naming_the_setting(monkeypatch, tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        _url_settings(monkeypatch, tmp_path, **env)


def test_an_unencoded_at_in_a_url_password_is_refused_without_showing_it(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="percent-encode an '@' in the password as %40") as excinfo:
        _url_settings(monkeypatch, tmp_path, SOURCE_URL="mysql://reader:Se@cret-part@db/od")
    assert "cret-part" not in str(excinfo.value) and "Se@" not in str(excinfo.value)


def test_a_url_password_never_appears_in_messages_or_logs(monkeypatch, tmp_path, caplog):
    s = _url_settings(
        monkeypatch,
        tmp_path,
        SOURCE_URL=f"mysql://reader:{ENCODED}@127.0.0.1:1/od",
        TARGET_URL=f"postgresql://etl:{ENCODED}@127.0.0.1:1/analytics",
    )
    assert HARD_PASSWORD not in repr(s) and ENCODED not in repr(s)
    messages = []
    for connect, cfg in ((connect_source, s.source), (connect_target, s.target)):
        with pytest.raises(ConnectionFailed) as excinfo:
            connect(cfg, connect_timeout=2)
        messages.append(str(excinfo.value))
    assert messages[0].startswith("cannot connect to source mysql://reader@127.0.0.1:1/od: ")
    assert messages[1].startswith("cannot connect to target postgresql://etl@127.0.0.1:1/analytics: ")
    logger = logging.getLogger("url-redaction-test")
    install_log_filter(logger)
    with caplog.at_level(logging.INFO, logger="url-redaction-test"):
        logger.info("connecting to %s", s.source.url.render_as_string(hide_password=False))
        logger.info("the password is %s / %s", HARD_PASSWORD, ENCODED)
    for text in (*messages, caplog.text, redact(f"dsn {ENCODED} {HARD_PASSWORD}")):
        assert HARD_PASSWORD not in text and ENCODED not in text


# --- database errors without row values (redact_error; target cursors rewrite their errors with it) ---

SECRET_VALUE = "PATIENT-SECRET-123"


def test_a_copy_error_of_a_target_cursor_keeps_names_and_drops_the_value(settings):
    import io
    import traceback

    import psycopg2

    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE red_copy (id int, amount int)")
            with pytest.raises(psycopg2.errors.InvalidTextRepresentation) as failed:
                cur.copy_expert("COPY red_copy FROM STDIN", io.BytesIO(f"1\t{SECRET_VALUE}\n".encode()))
    finally:
        conn.close()
    shown = "".join(traceback.format_exception(failed.value))
    assert SECRET_VALUE not in shown and SECRET_VALUE not in repr(failed.value)
    assert str(failed.value) == (
        'InvalidTextRepresentation (SQLSTATE 22P02): invalid input syntax for type integer: "<value>" '
        "[COPY red_copy line 1 column amount]"
    )
    assert failed.value.pgcode == "22P02"  # what callers branch on is untouched


def test_a_constraint_error_drops_its_detail_line(settings):
    import psycopg2

    conn = connect_target(settings.target)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE red_check (note text CHECK (note NOT LIKE 'PATIENT-%'))")
            with pytest.raises(psycopg2.errors.CheckViolation) as failed:
                cur.execute("INSERT INTO red_check VALUES (%s)", (SECRET_VALUE,))
    finally:
        conn.close()
    assert str(failed.value).startswith(
        'CheckViolation (SQLSTATE 23514): new row for relation "red_check" violates check constraint '
        '"red_check_note_check" [table pg_temp_'
    )
    assert SECRET_VALUE not in str(failed.value) and "Failing row" not in str(failed.value)
    assert 'violates check constraint "red_check_note_check"' in str(failed.value)


@pytest.mark.parametrize("driver", AVAILABLE_DRIVERS)
def test_a_source_error_quoting_a_value_is_redacted(settings, driver):
    import dataclasses

    from etl_pipeline.db import SOURCE_ERRORS
    from etl_pipeline.redact import redact_error

    conn = connect_source(dataclasses.replace(settings.source_admin, driver=driver))
    try:
        cur = conn.cursor()
        cur.execute("CREATE TEMPORARY TABLE red_src (v int)")
        cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
        with pytest.raises(SOURCE_ERRORS) as failed:
            cur.execute(f"INSERT INTO red_src VALUES ('{SECRET_VALUE}')")
    finally:
        conn.close()
    assert SECRET_VALUE in str(failed.value)  # the driver's own text quotes it
    shown = redact_error(failed.value)
    assert SECRET_VALUE not in shown
    assert shown.endswith(
        "(1366): Incorrect integer value: '<value>' for column `opendental`.`red_src`.`v` at row 1"
    )


def test_mask_values_keeps_quoted_names_and_masks_quoted_values():
    from etl_pipeline.redact import mask_values

    assert mask_values('column "note" of relation "patient" does not exist') == (
        'column "note" of relation "patient" does not exist'
    )
    assert (
        mask_values("Duplicate entry 'Smith-1950' for key 'PRIMARY'")
        == "Duplicate entry '<value>' for key 'PRIMARY'"
    )
    assert mask_values('value "12345678901" is out of range for type integer') == (
        'value "<value>" is out of range for type integer'
    )
    assert mask_values('invalid byte sequence for encoding "UTF8": 0xe9 0x20') == (
        'invalid byte sequence for encoding "UTF8": <value>'
    )
    assert mask_values('column "Jane Doe" does not exist') == 'column "<value>" does not exist'  # not a name


def test_timeouts_and_chunks_have_defaults_and_reach_the_drivers(monkeypatch, tmp_path):
    from etl_pipeline.db import mysqlclient_kwargs

    defaults = _url_settings(monkeypatch, tmp_path)
    assert (defaults.source.read_timeout, defaults.source.write_timeout, defaults.source.chunk_rows) == (
        600,
        60,
        50_000,
    )
    assert (defaults.target.statement_timeout, defaults.target.lock_timeout) == (6 * 3600, 300)
    s = _url_settings(
        monkeypatch,
        tmp_path,
        SOURCE_READ_TIMEOUT="2.5",
        SOURCE_WRITE_TIMEOUT="7",
        SOURCE_CHUNK_ROWS="1000",
        TARGET_STATEMENT_TIMEOUT="120",
        TARGET_LOCK_TIMEOUT="30",
        TARGET_IDLE_TIMEOUT="90",
        TARGET_STALL_TIMEOUT="20",
        TARGET_TABLE_LOCK_WAIT="5",
    )
    kwargs = mysqlclient_kwargs(s.source)
    assert (kwargs["read_timeout"], kwargs["write_timeout"], s.source.chunk_rows) == (3, 7, 1000)
    pg = s.target.connect_kwargs()
    assert pg["options"].split(" -c ")[:3] == [
        "-c statement_timeout=120000",
        "lock_timeout=30000",
        "idle_in_transaction_session_timeout=90000",
    ]
    assert (pg["keepalives"], pg["tcp_user_timeout"], s.target.table_lock_wait) == (1, 20000, 5)
