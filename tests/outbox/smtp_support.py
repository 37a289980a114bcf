"""A real SMTP server for the outbox tests: aiosmtpd with STARTTLS (a self-signed
certificate made with ``cryptography``) and AUTH required; it keeps what it accepted."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USERNAME, PASSWORD = "idp-outbox", "mot de passe du relais"
FIRST_PORT, LAST_PORT = 19200, 19299  # this suite's ports


def free_port() -> int:
    """A port of this suite's range nobody listens on, tried in random order (two test
    workers seldom pick the same one between the probe and the bind)."""
    for port in random.sample(range(FIRST_PORT, LAST_PORT + 1), LAST_PORT + 1 - FIRST_PORT):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 19200-19299")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for ``localhost`` and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool


@dataclass
class Inbox:
    """The aiosmtpd handler: what the server accepted, and hooks to refuse or to act
    (kill the client) at a given stage."""

    received: list[Received] = field(default_factory=list)
    on_data: Callable[[], None] | None = None
    on_rcpt: Callable[[], None] | None = None
    refuse_rcpt: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.on_rcpt is not None:
            self.on_rcpt()
        if self.refuse_rcpt is not None:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    message,  # type: ignore[arg-type]
                    session.ssl is not None,
                    bool(session.authenticated),
                )
            )
        if self.on_data is not None:
            self.on_data()  # the message is accepted and kept: whatever happens next
        return "250 Message accepted for delivery"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    good = (
        isinstance(data, LoginPassword)
        and data.login == USERNAME.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=good, handled=False)  # a refusal answered 535


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int
    cert: Path

    def settings(self) -> dict[str, Any]:
        """The ``IDP_SMTP_*`` settings (without the prefix) that reach this server."""
        return {
            "OUTBOX_SENDER": "smtp",
            "SMTP_HOST": "localhost",
            "SMTP_PORT": self.port,
            "SMTP_STARTTLS": True,
            "SMTP_CA_FILE": str(self.cert),
            "SMTP_USERNAME": USERNAME,
            "SMTP_PASSWORD": PASSWORD,
            "SMTP_FROM": "ne-pas-repondre@interops.example",
            "SMTP_TIMEOUT": 10.0,
        }


@contextmanager
def smtp_server(folder: Path, port: int | None = None, *, tls: bool = True) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1: STARTTLS required and AUTH required (unless ``tls`` is off:
    then a plain server that offers neither)."""
    cert, key = self_signed(folder)
    port = port or free_port()
    inbox = Inbox()
    options: dict[str, Any] = {}
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options = {
            "tls_context": context,
            "require_starttls": True,
            "auth_required": True,
            "authenticator": authenticator,
        }
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(inbox, port, cert)
    finally:
        controller.stop()
