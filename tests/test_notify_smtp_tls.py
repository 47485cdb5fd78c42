"""Alert mail only goes to a mail server whose certificate is trusted (etl_pipeline/notify.py).

A real TLS mail server runs on 127.0.0.1 in a thread (STARTTLS or implicit TLS) with certificates
from a throwaway CA made here: trusted through SMTP_SSL_CA the mail arrives with the login inside
TLS; a certificate from another CA or for another host name is refused before the login, and the
one warning names host:port and the reason, never the password or the message body."""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import ipaddress
import logging
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etl_pipeline import notify

USER, PASSWORD = "etl-mailer", "smtp-secret-58213"
BODY = "table failed: body-marker-7719"  # stands for the alert text; must never reach a log


# ------------------------------------------------------------------------ a throwaway PKI


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA the tests trust (PEM)
    good: Issued  # by `ca`, for 127.0.0.1 and localhost
    other_ca: Issued  # by a CA nobody trusts, same names
    wrong_name: Issued  # by `ca`, for mail.other.example only


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_cert(
    directory: Path,
    stem: str,
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
    names: list[x509.GeneralName],
) -> Issued:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Issued(
        cert=_pem(directory / f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM)),
        key=_pem(directory / f"{stem}.key", key_pem),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("smtp-pki")
    trusted, untrusted = _ca("ETL test mail CA"), _ca("Somebody else's CA")
    local = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    return Pki(
        ca=_pem(directory / "ca.pem", trusted[1].public_bytes(serialization.Encoding.PEM)),
        good=_server_cert(directory, "good", trusted, local),
        other_ca=_server_cert(directory, "other-ca", untrusted, local),
        wrong_name=_server_cert(directory, "wrong-name", trusted, [x509.DNSName("mail.other.example")]),
    )


# ------------------------------------------------------------------------ a TLS mail server


class _Handler(socketserver.BaseRequestHandler):
    """One SMTP conversation; the TLS context, the mode and the records are the stand-in's."""

    server: _Server

    def setup(self) -> None:
        self.sock: socket.socket = self.request
        self.reader = self.sock.makefile("rb")

    def start_tls(self) -> None:
        self.reader.close()  # nothing is buffered: the client waits for 220 before its hello
        self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
        self.reader = self.sock.makefile("rb")

    def reply(self, *lines: str) -> None:
        *more, last = lines
        self.sock.sendall(b"".join(f"250-{m}\r\n".encode() for m in more) + last.encode() + b"\r\n")

    def handle(self) -> None:
        try:
            if self.server.implicit:
                self.start_tls()
            self.reply("220 tls stand-in ESMTP")
            self.conversation(self.server.stand_in)
        except (ssl.SSLError, ConnectionError):  # the client refused our certificate
            self.server.stand_in.refused_handshakes += 1

    def conversation(self, stand_in: TlsSmtpStandIn) -> None:
        while line := self.reader.readline():
            verb, _, rest = line.decode().strip().partition(" ")
            verb = verb.upper()
            encrypted = isinstance(self.sock, ssl.SSLSocket)
            if verb == "EHLO":
                self.reply("tls-stand-in", *([] if encrypted else ["STARTTLS"]), "250 AUTH PLAIN")
            elif verb == "STARTTLS" and not encrypted:
                self.reply("220 go ahead")
                self.start_tls()
            elif verb == "AUTH":
                _, user, password = base64.b64decode(rest.split()[1]).decode().split("\0")
                if (user, password) != (USER, PASSWORD):
                    self.reply("535 authentication failed")
                    continue
                stand_in.logins.append((user, self.sock.version() if encrypted else None))
                self.reply("235 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                body = b""
                while (data := self.reader.readline()) not in (b".\r\n", b""):
                    body += data[1:] if data.startswith(b"..") else data
                stand_in.messages.append(email.message_from_bytes(body, policy=email.policy.default))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                self.reply("250 ok")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, stand_in: TlsSmtpStandIn, tls: ssl.SSLContext, implicit: bool) -> None:
        self.stand_in, self.tls, self.implicit = stand_in, tls, implicit
        super().__init__(("127.0.0.1", 0), _Handler)


class TlsSmtpStandIn:
    """A mail server on 127.0.0.1 that offers STARTTLS (or, with `implicit`, speaks TLS from the first
    byte) with the given certificate, then enough SMTP for smtplib: EHLO, STARTTLS, AUTH PLAIN, MAIL,
    RCPT, DATA, QUIT. `logins` holds (user, TLS version or None) per accepted login, `messages` the
    accepted messages, `refused_handshakes` the TLS handshakes the client broke off."""

    def __init__(self, issued: Issued, *, implicit: bool = False) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[tuple[str, str | None]] = []
        self.refused_handshakes = 0
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(issued.cert, issued.key)
        self.server = _Server(self, tls, implicit)
        self.port = self.server.server_address[1]

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------ tests


@pytest.fixture
def smtp_env(monkeypatch):
    """Point notify at a stand-in; only these settings, no Slack, no .env file."""

    def configure(server: TlsSmtpStandIn, **settings: str) -> None:
        for key in ("SMTP_SSL", "SMTP_SSL_CA", "SMTP_STARTTLS", "NOTIFY_EMAIL_FROM", "SLACK_WEBHOOK_URL"):
            monkeypatch.delenv(key, raising=False)
        env = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(server.port),
            "SMTP_USER": USER,
            "SMTP_PASSWORD": PASSWORD,
            "NOTIFY_EMAIL_TO": "ops@example",
            "ETL_ENV_FILE": "/nonexistent.env",
            **settings,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)

    return configure


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_starttls_to_a_server_signed_by_smtp_ssl_ca_delivers_with_the_login_inside_tls(pki, smtp_env, host):
    with TlsSmtpStandIn(pki.good) as server:
        smtp_env(server, SMTP_HOST=host, SMTP_SSL_CA=str(pki.ca))
        notify.notify("Nightly ETL", "WARNING", {"failed": 1}, [BODY])
    (message,) = server.messages
    assert message["Subject"] == "[WARNING] Nightly ETL" and BODY in message.get_content()
    ((user, tls_version),) = server.logins
    assert user == USER and tls_version and tls_version.startswith("TLS")


def test_implicit_tls_with_smtp_ssl_delivers_too(pki, smtp_env):
    with TlsSmtpStandIn(pki.good, implicit=True) as server:
        smtp_env(server, SMTP_SSL="true", SMTP_SSL_CA=str(pki.ca))
        assert notify._send_email("Nightly ETL", "INFO", BODY, timeout=5) is True
    assert [m["Subject"] for m in server.messages] == ["[INFO] Nightly ETL"]
    assert server.logins[0][1].startswith("TLS")


def _assert_refused_quietly(server, caplog, capfd, reason: str) -> None:
    """Nothing was sent, no login; one warning naming host:port and the reason; no secret anywhere."""
    assert server.messages == [] and server.logins == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == notify.log.name]
    assert line.startswith(f"SMTP alert not sent: certificate of 127.0.0.1:{server.port} not trusted (")
    assert reason in line
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err, *(r.getMessage() for r in caplog.records)):
        assert PASSWORD not in text and USER not in text and "body-marker" not in text


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
def test_a_certificate_from_an_untrusted_ca_is_refused_before_the_login(
    pki, smtp_env, caplog, capfd, implicit
):
    caplog.set_level(logging.DEBUG)
    with TlsSmtpStandIn(pki.other_ca, implicit=implicit) as server:
        smtp_env(server, SMTP_SSL_CA=str(pki.ca), **({"SMTP_SSL": "true"} if implicit else {}))
        assert notify._send_email("Nightly ETL", "CRITICAL", BODY, timeout=5) is False
    _assert_refused_quietly(server, caplog, capfd, "unable to get local issuer certificate")
    assert f"SMTP_SSL_CA={pki.ca}" in caplog.text


def test_a_certificate_for_another_host_name_is_refused_even_from_the_trusted_ca(
    pki, smtp_env, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    with TlsSmtpStandIn(pki.wrong_name) as server:
        smtp_env(server, SMTP_SSL_CA=str(pki.ca))
        assert notify._send_email("Nightly ETL", "CRITICAL", BODY, timeout=5) is False
    _assert_refused_quietly(server, caplog, capfd, "mismatch, certificate is not valid for '127.0.0.1'")


def test_without_smtp_ssl_ca_the_system_trust_store_decides(pki, smtp_env, caplog, capfd, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with TlsSmtpStandIn(pki.good) as server:
        smtp_env(server)
        assert notify._send_email("Nightly ETL", "CRITICAL", BODY, timeout=5) is False
    _assert_refused_quietly(server, caplog, capfd, "system trust store")

    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))  # OpenSSL's default store, read per context
    with TlsSmtpStandIn(pki.good) as server:
        smtp_env(server)
        assert notify._send_email("Nightly ETL", "INFO", BODY, timeout=5) is True
    assert len(server.messages) == 1


def test_an_unreadable_smtp_ssl_ca_is_one_clear_warning(pki, smtp_env, caplog, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    with TlsSmtpStandIn(pki.good) as server:
        smtp_env(server, SMTP_SSL_CA=str(missing))
        assert notify._send_email("Nightly ETL", "INFO", BODY, timeout=5) is False
    assert server.messages == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == notify.log.name]
    assert f"SMTP_SSL_CA {missing} is not a readable PEM CA bundle" in line and PASSWORD not in line


def test_smtp_starttls_false_stays_plain_for_a_local_relay(pki, smtp_env):
    with TlsSmtpStandIn(pki.good) as server:
        # a CA setting does not matter without TLS (not even an unreadable one)
        smtp_env(server, SMTP_STARTTLS="false", SMTP_SSL_CA="/nonexistent/ca.pem")
        assert notify._send_email("Nightly ETL", "INFO", BODY, timeout=5) is True
    assert server.logins == [(USER, None)] and len(server.messages) == 1
