"""Email through a real SMTP server (aiosmtpd, STARTTLS and AUTH): the message arrives
once, retried with backoff while the server is down, given up when refused or too often,
never sent once expired; its secrets are gone from the database once sent."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp.config import ConfigError
from idp.outbox.delivery import deliver_round
from idp.outbox.settings import build_sender, retry_policy
from idp.stores.db import database
from idp.stores.sealing import app_sealer
from rcd_store import outbox
from rcd_store.models import Outbox
from tests.outbox.smtp_support import SmtpServer, free_port, smtp_server
from tests.outbox.test_files import CODE, queue, queue_letter
from tests.outbox_support import pdf_text

LINK = "https://idp.test/lien?jeton=abc"


@pytest.fixture
def server(tmp_path: Path) -> Any:
    with smtp_server(tmp_path) as running:
        yield running


def smtp_app(make_app: Any, server: SmtpServer, **extra: Any) -> Any:
    return make_app(**(server.settings() | extra))


def record(app: Any, row_id: int) -> Outbox:
    session = database(app).sessions()
    try:
        row = session.get(Outbox, row_id)
        assert row is not None
        session.expunge(row)
        return row
    finally:
        session.close()


def test_email_arrives_once_over_starttls_with_auth(
    make_app: Any, server: SmtpServer, session: Any
) -> None:
    app = smtp_app(make_app, server)
    row = queue(app, session)
    done = deliver_round(app)
    assert (done.sent, done.failed) == (1, 0)
    (got,) = server.inbox.received
    assert got.tls and got.authenticated
    assert got.recipients == ["elodie@dupont.example"]
    assert got.sender == "ne-pas-repondre@interops.example"
    assert got.message["Subject"] == "Votre lien"
    assert got.message["Message-ID"] == f"<outbox.{row.idempotency_key}@interops.example>"
    assert LINK in got.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert deliver_round(app).sent == 0 and len(server.inbox.received) == 1  # once
    sent = record(app, row.id)
    assert (sent.state, sent.body_sealed, sent.attempts) == ("sent", None, 1)
    assert sent.sent_at is not None and sent.idempotency_key == row.idempotency_key


def test_down_then_up_is_retried_with_backoff_and_arrives_once(
    make_app: Any, tmp_path: Path, session: Any
) -> None:
    port = free_port()
    with smtp_server(tmp_path, port) as probe:
        settings = probe.settings()
    app = make_app(**(settings | {"OUTBOX_RETRY_SECONDS": 60.0}))
    row = queue(app, session)
    sender, policy, sealer = build_sender(app.config), retry_policy(app.config), app_sealer(app)
    start = row.created_at
    assert outbox.deliver(session, sealer, sender, policy=policy, now=start).failed == 1
    first = record(app, row.id)
    assert first.state == "pending" and first.attempts == 1
    assert first.next_attempt_at == start + timedelta(seconds=60)
    assert "injoignable" in (first.last_error or "")
    early = first.next_attempt_at - timedelta(seconds=1)
    assert outbox.deliver(session, sealer, sender, policy=policy, now=early).failed == 0
    assert outbox.deliver(session, sealer, sender, policy=policy, now=first.next_attempt_at).failed
    second = record(app, row.id)
    assert second.next_attempt_at == first.next_attempt_at + timedelta(seconds=120)  # doubled
    with smtp_server(tmp_path, port) as server:
        later = second.next_attempt_at
        assert outbox.deliver(session, sealer, sender, policy=policy, now=later).sent == 1
        assert outbox.deliver(session, sealer, sender, policy=policy, now=later).sent == 0
        assert len(server.inbox.received) == 1
    assert record(app, row.id).attempts == 3


def test_given_up_after_max_attempts(make_app: Any, session: Any) -> None:
    app = make_app(
        OUTBOX_SENDER="smtp",
        SMTP_HOST="localhost",
        SMTP_PORT=free_port(),
        OUTBOX_MAX_ATTEMPTS=2,
        OUTBOX_RETRY_SECONDS=0.0,
    )
    row = queue(app, session)
    assert deliver_round(app).failed == 1
    assert deliver_round(app).gave_up == 1
    given_up = record(app, row.id)
    assert (given_up.state, given_up.body_sealed, given_up.sent_at) == ("failed", None, None)
    assert "abandonné après 2 tentatives" in (given_up.last_error or "")
    assert deliver_round(app) == outbox.Delivery(0, 0, 0)


def test_permanent_refusal_is_given_up_at_once(
    make_app: Any, server: SmtpServer, session: Any
) -> None:
    server.inbox.refuse_rcpt = "550 5.1.1 destinataire inconnu"
    app = smtp_app(make_app, server)
    row = queue(app, session)
    assert deliver_round(app).gave_up == 1
    refused = record(app, row.id)
    assert refused.state == "failed" and refused.body_sealed is None
    assert "550" in (refused.last_error or "") and server.inbox.received == []


def test_wrong_password_is_retried_later(make_app: Any, server: SmtpServer, session: Any) -> None:
    app = smtp_app(make_app, server, SMTP_PASSWORD="pas le bon")
    row = queue(app, session)
    assert deliver_round(app).failed == 1
    assert "authentification" in (record(app, row.id).last_error or "")
    assert server.inbox.received == []


def test_no_mail_in_clear_to_a_server_without_starttls(
    make_app: Any, tmp_path: Path, session: Any
) -> None:
    with smtp_server(tmp_path, tls=False) as plain:
        app = smtp_app(make_app, plain, SMTP_USERNAME=None, SMTP_PASSWORD=None)
        row = queue(app, session)
        assert deliver_round(app).failed == 1
        assert plain.inbox.received == []
    assert "STARTTLS" in (record(app, row.id).last_error or "")


def test_expired_messages_are_dropped_unsent(
    make_app: Any, server: SmtpServer, session: Any
) -> None:
    app = smtp_app(make_app, server)
    row = queue(app, session, lifetime=timedelta(minutes=5))
    sender = build_sender(app.config)
    late = row.created_at + timedelta(minutes=5)
    done = outbox.deliver(session, app_sealer(app), sender, now=late)
    assert (done.sent, done.purged) == (0, 1)
    assert server.inbox.received == []
    dropped = record(app, row.id)
    assert (dropped.state, dropped.body_sealed, dropped.sent_at) == ("expired", None, None)


def test_letters_go_to_the_print_house_as_pdf(
    make_app: Any, server: SmtpServer, session: Any
) -> None:
    app = smtp_app(make_app, server, LETTERS_TO="impression@imprimeur.example")
    queue_letter(app, session, f"Code : {CODE}")
    assert deliver_round(app).sent == 1
    (got,) = server.inbox.received
    assert got.recipients == ["impression@imprimeur.example"]
    (attachment,) = got.message.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    text = pdf_text(attachment.get_content())
    assert CODE in text and "75002 PARIS" in text


def test_without_print_house_letters_stay_files(
    make_app: Any, server: SmtpServer, session: Any
) -> None:
    app = smtp_app(make_app, server)
    queue_letter(app, session, CODE)
    queue(app, session)
    assert deliver_round(app).sent == 2
    assert [r.recipients for r in server.inbox.received] == [["elodie@dupont.example"]]
    (letter,) = (Path(app.config["INSTANCE_PATH"]) / "outbox").glob("*-activation.pdf")
    assert CODE in pdf_text(letter.read_bytes())


def test_a_bad_recipient_is_refused_not_sent(
    make_app: Any, server: SmtpServer, session: Any
) -> None:
    app = smtp_app(make_app, server)
    row = queue(app, session, recipient="victime@x.example\nBcc: autre@y.example")
    assert deliver_round(app).gave_up == 1
    assert server.inbox.received == [] and record(app, row.id).state == "failed"


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"OUTBOX_SENDER": "pigeon"}, "IDP_OUTBOX_SENDER"),
        ({"OUTBOX_SENDER": "smtp"}, "IDP_SMTP_HOST"),
        (
            {"SMTP_HOST": "smtp.example", "SMTP_STARTTLS": False, "SMTP_USERNAME": "u"},
            "IDP_SMTP_STARTTLS",
        ),
        ({"OUTBOX_SENDER": "file", "SMTP_FROM": "pas une adresse"}, "IDP_SMTP_FROM"),
        ({"SMTP_HOST": "smtp.example", "LETTERS_TO": "x\ny@z"}, "IDP_LETTERS_TO"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], error: str) -> None:
    config = {"EMBEDDED_DATABASE": False, "INSTANCE_PATH": "/nonexistent"} | settings
    from idp import config as idp_config

    with pytest.raises(ConfigError, match=error):
        build_sender(idp_config.DEFAULTS | config)


def test_sender_defaults() -> None:
    from idp import config as idp_config
    from idp.outbox.senders import ConsoleSender, FileSender
    from idp.outbox.smtp import SmtpSender

    base = idp_config.DEFAULTS | {"INSTANCE_PATH": "/srv/idp"}
    assert isinstance(build_sender(base | {"EMBEDDED_DATABASE": True}), FileSender)
    assert isinstance(build_sender(base | {"OUTBOX_SENDER": "console"}), ConsoleSender)
    remote = build_sender(
        base | {"EMBEDDED_DATABASE": False, "SMTP_HOST": "smtp.example", "LETTERS_TO": "p@q.fr"}
    )
    assert isinstance(remote, SmtpSender) and remote.settings.starttls  # on by default
    local = build_sender(base | {"OUTBOX_SENDER": "smtp", "SMTP_HOST": "localhost"})
    assert not local.emails.settings.starttls  # type: ignore[attr-defined]


def test_console_sender_prints_the_message() -> None:
    from idp.outbox.mime import Letterhead
    from idp.outbox.senders import ConsoleSender

    stream = io.StringIO()
    message = outbox.Message(7, "email", "test", "a@b.example", "Sujet", LINK, "cle")
    ConsoleSender(Letterhead("n@x.example", ("Interops",)), stream).send(message, lambda: None)
    printed = stream.getvalue()
    assert "To: a@b.example" in printed and LINK in printed and "\r" not in printed
    assert "Message-ID: <outbox.cle@x.example>" in printed


def test_the_row_is_claimed_once(app: Any, session: Any) -> None:
    """Two workers race for one message: one claim wins (conditional UPDATE)."""
    row = queue(app, session)
    other = database(app).sessions()
    try:
        now = row.created_at
        assert outbox._claim(session, row.id, "worker-a", now)
        assert not outbox._claim(other, row.id, "worker-b", now)
    finally:
        other.close()
    assert session.scalars(select(Outbox.claimed_by)).one() == "worker-a"
