"""The file sender and the test helper: emails as RFC 5322 files, letters as PDF (their
text extracted with pypdf finds the codes), files 0600 in a 0700 folder, the sealed body
gone from the database once sent."""

from __future__ import annotations

import stat
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from idp.stores.sealing import app_sealer
from rcd_store import outbox
from rcd_store.models import Outbox
from tests.outbox_support import deliver_all, emails, letters

CODE = "7K3M-Q9ZD-WX4P-2HJN"
ADDRESS = (
    "SOCIÉTÉ DUPONT & FILS\nÀ l'attention du représentant légal\n12 rue de la Paix\n75002 PARIS"
)


def queue(app: Any, session: Any, **fields: Any) -> Outbox:
    values: dict[str, Any] = {
        "channel": "email",
        "kind": "test",
        "recipient": "elodie@dupont.example",
        "subject": "Votre lien",
        "body": "Bonjour,\n\nVotre lien : https://idp.test/lien?jeton=abc\n",
        "lifetime": timedelta(hours=1),
    } | fields
    row = outbox.put(session, app_sealer(app), **values)
    session.commit()
    return row


def queue_letter(app: Any, session: Any, body: str) -> Outbox:
    return queue(
        app,
        session,
        channel="letter",
        kind="activation",
        recipient=ADDRESS,
        subject="Activation de l'administrateur",
        body=body,
    )


def test_letter_is_a_pdf_whose_text_carries_the_code(app: Any, session: Any) -> None:
    queue_letter(app, session, f"Madame, Monsieur,\n\nCode d'activation : {CODE}\n\nCordialement.")
    (letter,) = letters(app)
    assert letter.path.name.endswith("-activation.pdf")
    assert letter.path.read_bytes().startswith(b"%PDF-")
    assert CODE in letter.text
    assert "SOCIÉTÉ DUPONT & FILS" in letter.text and "75002 PARIS" in letter.text
    assert "Objet : Activation de l'administrateur" in letter.text
    assert b"Courier-Bold" in letter.path.read_bytes()  # the code in the monospace font
    assert letter.recipient == ADDRESS


def test_email_is_an_rfc5322_file(app: Any, session: Any) -> None:
    row = queue(app, session)
    key = row.idempotency_key
    (mail,) = deliver_all(app)
    assert (mail.channel, mail.recipient, mail.subject) == (
        "email",
        "elodie@dupont.example",
        "Votre lien",
    )
    assert "https://idp.test/lien?jeton=abc" in mail.text
    raw = mail.path.read_text()
    assert f"Message-ID: <outbox.{key}@localhost>" in raw
    assert emails(app) == [mail]
    assert deliver_all(app) == []  # nothing sent twice


def test_files_are_private(app: Any, session: Any) -> None:
    queue(app, session)
    (mail,) = deliver_all(app)
    assert stat.S_IMODE(mail.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(mail.path.parent.stat().st_mode) == 0o700


def test_secrets_are_purged_once_sent(app: Any, session: Any) -> None:
    row = queue(app, session)
    deliver_all(app)
    session.expire_all()
    record = session.scalars(select(Outbox).where(Outbox.id == row.id)).one()
    assert record.body_sealed is None
    assert record.state == "sent" and record.sent_at is not None
    assert record.idempotency_key == row.idempotency_key


def test_a_recipient_that_is_not_one_address_is_given_up(app: Any, session: Any) -> None:
    row = queue(app, session, recipient="a@b.example, autre@c.example")
    assert deliver_all(app) == []
    session.expire_all()
    record = session.get(Outbox, row.id)
    assert record is not None and (record.state, record.body_sealed) == ("failed", None)
    assert "adresse de courriel invalide" in (record.last_error or "")


def test_a_subject_stays_one_header_line(app: Any, session: Any) -> None:
    queue(app, session, subject="Votre lien\r\nBcc: espion@evil.example")
    (mail,) = deliver_all(app)
    assert mail.subject == "Votre lien Bcc: espion@evil.example"
    assert "\nBcc:" not in mail.path.read_text()
