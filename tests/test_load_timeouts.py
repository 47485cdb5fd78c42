"""No hangs: a load whose source or target stops answering mid-read fails within its timeouts (set short
here), with an error that names the table and the end that hung, and leaves no reader thread behind;
a retry through a healthy path then succeeds. The hang is a loopback proxy in front of one server that,
on command, stops forwarding without closing anything (as a stalled firewall or NAT does)."""

from __future__ import annotations

import dataclasses
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from test_load_support import admin_exec, drop_everywhere, pg_rows, table_config

from etl_pipeline.db import TargetStalled, connect_target
from etl_pipeline.errors import ConnectionFailed
from etl_pipeline.load import load_table, source, verify_table
from etl_pipeline.load.source import SourceStalled


class StallingProxy:
    """Forwards 127.0.0.1:<port> to a server; `stall()` stops moving bytes either way, sockets left open."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.forwarding.clear()

    def close(self) -> None:
        self.closed.set()
        self.forwarding.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        while not self.closed.is_set():
            if not self.forwarding.is_set():  # stalled: read nothing, send nothing, close nothing
                time.sleep(0.05)
                continue
            try:
                ready, _, _ = select.select([a], [], [], 0.1)
                if not ready or not self.forwarding.is_set():
                    continue
                data = a.recv(1 << 16)
                if not data:
                    b.shutdown(socket.SHUT_WR)
                    return
                b.sendall(data)
            except (OSError, ValueError):
                return


@pytest.fixture
def proxy(settings) -> Iterator[callable]:
    made: list[StallingProxy] = []

    def make(host: str, port: int) -> StallingProxy:
        made.append(StallingProxy(host, port))
        return made[-1]

    yield make
    for p in made:
        p.close()


def make(settings, name, rows=20_000):
    drop_everywhere(settings, name)
    admin_exec(
        settings,
        f"CREATE TABLE {name} (id bigint PRIMARY KEY, v int, note varchar(200), "
        "ts timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()) ENGINE=InnoDB",
        f"INSERT INTO {name} (id, v, note) SELECT seq, seq, REPEAT('n', 200) FROM seq_1_to_{rows}",
    )
    return table_config(settings, name)


def stall_at_batch(monkeypatch, table, proxy_, batch=2):
    monkeypatch.setattr(source, "BATCH_ROWS", 500)

    def hook(t, n):
        if t == table and n == batch:
            proxy_.stall()

    monkeypatch.setattr(source, "batch_hook", hook)


def readers_left(table):
    return [t.name for t in threading.enumerate() if t.name.startswith(f"read-{table}-") and t.is_alive()]


def test_a_source_that_stops_answering_mid_read_fails_the_load_in_seconds(settings, proxy, monkeypatch):
    t = make(settings, "to_src")
    hung = proxy(settings.source.host, settings.source.port)
    cfg = dataclasses.replace(settings.source, port=hung.port, read_timeout=2, connect_timeout=2)
    through = dataclasses.replace(settings, source=cfg)
    stall_at_batch(monkeypatch, t.name, hung)
    started = time.monotonic()
    with pytest.raises(SourceStalled) as failed:
        load_table(through, t, "hang-src")
    assert time.monotonic() - started < 20
    message = str(failed.value)
    assert message.startswith("to_src: the source mysql://etl_reader@127.0.0.1:") and " hung: " in message
    assert "SOURCE_READ_TIMEOUT 2 s" in message
    assert readers_left("to_src") == []
    assert pg_rows(settings, "SELECT status, error_class FROM etl.load_runs WHERE run_id = 'hang-src'") == [
        ("failed", "SourceStalled")
    ]
    monkeypatch.setattr(source, "batch_hook", None)
    assert load_table(settings, t, "retry-src").status == "success"  # the direct path
    assert verify_table(settings, t, deep=True).ok


def test_a_source_that_does_not_answer_a_connect_fails_within_the_connect_timeout(settings, proxy):
    t = make(settings, "to_conn", rows=10)
    hung = proxy(settings.source.host, settings.source.port)
    hung.stall()
    through = dataclasses.replace(
        settings, source=dataclasses.replace(settings.source, port=hung.port, connect_timeout=2)
    )
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"cannot connect to source mysql://etl_reader@127\.0\.0\.1:"):
        load_table(through, t, "hang-connect")
    assert time.monotonic() - started < 10


def test_a_target_that_stops_answering_mid_copy_fails_the_load_in_seconds(settings, proxy, monkeypatch):
    t = make(settings, "to_tgt")
    hung = proxy(settings.target.host, settings.target.port)
    cfg = dataclasses.replace(
        settings.target,
        port=hung.port,
        statement_timeout=3,
        stall_timeout=2,
        idle_timeout=3,
        connect_timeout=2,
    )
    through = dataclasses.replace(settings, target=cfg)
    stall_at_batch(monkeypatch, t.name, hung, batch=3)
    started = time.monotonic()
    with pytest.raises(TargetStalled) as failed:
        load_table(through, t, "hang-tgt")
    assert time.monotonic() - started < 20
    message = str(failed.value)
    assert message.startswith("to_tgt: target postgresql://etl@127.0.0.1:") and " hung: " in message
    assert "during a COPY (TARGET_STALL_TIMEOUT)" in message
    assert readers_left("to_tgt") == []  # the reader waiting to hand on a batch was stopped
    monkeypatch.setattr(source, "batch_hook", None)
    # The hung session's server end still holds its locks (on raw.to_tgt__new) until the server drops the
    # connection: over a real dead path its keepalives do (about two minutes, see settings); here the
    # proxy's kernel answers them, so the broken path is torn down, as a middlebox dropping it would.
    hung.close()
    retry = load_table(settings, t, "retry-tgt")
    assert (retry.status, retry.strategy, retry.rows_read) == ("success", "full", 20_000)
    assert verify_table(settings, t, deep=True).ok


def test_a_reader_that_hands_on_nothing_does_not_keep_the_copy_waiting(settings, monkeypatch):
    """The queue between the reader thread and the COPY: with the reader stuck outside the driver (its own
    timeouts cannot fire), the COPY gives up after twice the read timeout and then some."""
    t = make(settings, "to_queue", rows=2000)
    release = threading.Event()
    monkeypatch.setattr(source, "BATCH_ROWS", 500)
    monkeypatch.setattr(
        source, "batch_hook", lambda table, n: release.wait(60) if table == "to_queue" else None
    )
    quick = dataclasses.replace(settings, source=dataclasses.replace(settings.source, read_timeout=1))
    started = time.monotonic()
    try:
        with pytest.raises(SourceStalled, match=r"to_queue: the source .* hung: no rows arrived for 12 s"):
            load_table(quick, t, "hang-queue")
    finally:
        release.set()
    assert time.monotonic() - started < 30


def test_a_statement_the_target_never_answers_is_given_up_after_its_timeouts(settings, proxy):
    hung = proxy(settings.target.host, settings.target.port)
    cfg = dataclasses.replace(settings.target, port=hung.port, statement_timeout=1, stall_timeout=1)
    conn = connect_target(cfg)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            hung.stall()
            started = time.monotonic()
            with pytest.raises(
                TargetStalled, match=r"hung: no answer for 2 s to a statement \(TARGET_STALL_TIMEOUT"
            ):
                cur.execute("SELECT 2")
            assert time.monotonic() - started < 5
    finally:
        conn.close()
