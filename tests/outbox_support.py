"""The outbox as a test reads it: deliver what is queued through the file sender, then
read the delivered emails (parsed RFC 5322) and letters (the PDF's text, by pypdf).

    from tests.outbox_support import deliver_all, emails, letters, last_email

    deliver_all(app)                 # -> list[Delivered] sent by this call
    mail = emails(app)[-1]           # every email delivered so far, oldest first
    mail.recipient, mail.subject, mail.text
    code = re.search(r"[0-9A-Z]{4}(?:-[0-9A-Z]{4})+", letters(app)[-1].text)

``emails`` and ``letters`` deliver first, so a test need not call ``deliver_all``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from idp.outbox.delivery import deliver_round
from idp.outbox.senders import FileSender
from idp.outbox.settings import letterhead, outbox_folder
from idp.stores.db import database
from rcd_store.models import Outbox

_NAME = re.compile(r"(\d+)-([a-z0-9_]+)\.(eml|pdf)")


@dataclass(frozen=True)
class Delivered:
    """One delivered message: ``text`` is an email's plain-text body, or a letter's
    text as extracted from its PDF (the recipient's address block comes first)."""

    id: int
    channel: str  # email | letter
    kind: str
    recipient: str
    subject: str
    text: str
    path: Path


def pdf_text(data: bytes) -> str:
    """The text of a PDF, page after page."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def read(app: Any, path: Path) -> Delivered:
    """The message the file sender wrote at ``path`` (a letter's recipient and subject
    from its outbox record)."""
    match = _NAME.fullmatch(path.name)
    assert match is not None, path
    message_id, kind, suffix = int(match[1]), match[2], match[3]
    if suffix == "pdf":
        record = _record(app, message_id)
        text = pdf_text(path.read_bytes())
        return Delivered(message_id, "letter", kind, record.recipient, record.subject, text, path)
    mail = BytesParser(policy=policy.default).parse(io.BytesIO(path.read_bytes()))
    body = mail.get_body(("plain",))
    assert body is not None, path
    content = body.get_content()
    return Delivered(
        message_id, "email", kind, str(mail["To"]), str(mail["Subject"]), content, path
    )


def _record(app: Any, message_id: int) -> Outbox:
    session = database(app).sessions()
    try:
        row = session.get(Outbox, message_id)
        assert row is not None, f"no outbox record {message_id}"
        session.expunge(row)
        return row
    finally:
        session.close()


def _files(app: Any) -> list[Path]:
    folder = outbox_folder(app.config)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[0]))


def deliver_all(app: Any) -> list[Delivered]:
    """Send every due message of ``app``'s outbox into ``<instance>/outbox/``; the
    messages this call delivered, oldest first."""
    before = {p: p.stat().st_mtime_ns for p in _files(app)}
    sender = FileSender(outbox_folder(app.config), letterhead(app.config))
    deliver_round(app, sender)
    return [read(app, p) for p in _files(app) if before.get(p) != p.stat().st_mtime_ns]


def delivered(app: Any) -> list[Delivered]:
    """Every message delivered so far (after delivering what is due), oldest first."""
    deliver_all(app)
    return [read(app, p) for p in _files(app)]


def emails(app: Any) -> list[Delivered]:
    return [m for m in delivered(app) if m.channel == "email"]


def letters(app: Any) -> list[Delivered]:
    return [m for m in delivered(app) if m.channel == "letter"]


def last_email(app: Any, to: str | None = None) -> Delivered:
    """The latest email (to ``to`` when given); fails when there is none."""
    found = [m for m in emails(app) if to is None or m.recipient == to]
    assert found, f"no email delivered{f' to {to}' if to else ''}"
    return found[-1]
