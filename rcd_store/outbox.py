"""Letters and emails waiting to be sent, holding only what delivery needs.

A message's body (a password-reset link, an activation code) is sealed under the
master key (the application's :class:`~rcd_store.sealing.Sealer`), bound to its
kind and recipient: someone who reads the database, a backup or a dump finds no
usable link, and a body moved to another recipient does not open. A message is
deleted as soon as its sender accepted it, and purged unsent once it expires
(a reset link is worthless after its hour).

Delivery goes through a pluggable :class:`Sender` (the real one comes with
enrolment); :func:`deliver` sends what is due and purges what is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rcd_store.db import rows_affected, utcnow
from rcd_store.errors import DirectoryError
from rcd_store.models import Outbox
from rcd_store.sealing import Sealer


@dataclass(frozen=True)
class Message:
    """One message as the sender sees it (the body in clear, in memory only)."""

    id: int
    channel: str
    kind: str
    recipient: str
    subject: str
    body: str


class SendError(DirectoryError):
    """A sender could not hand the message over now (it stays queued; try again later)."""

    http_status = 503


class Sender(Protocol):
    """Hands a message to the mail or letter service; raises :class:`SendError` when
    it could not (any other error is a defect and propagates)."""

    def send(self, message: Message) -> None: ...


@dataclass(frozen=True)
class Delivery:
    sent: int
    failed: int
    purged: int


def _context(kind: str, recipient: str) -> bytes:
    return f"outbox\x00{kind}\x00{recipient}".encode()


def put(
    session: Session,
    sealer: Sealer,
    *,
    channel: str,
    kind: str,
    recipient: str,
    subject: str,
    body: str,
    lifetime: timedelta | None = None,
) -> Outbox:
    """Queue a message in the caller's transaction, its body sealed; ``lifetime``: purged
    unsent after it (a link that expires). Expired messages go in the same transaction,
    so the outbox never keeps dead links even before a sender runs."""
    now = utcnow()
    _drop_expired(session, now)
    row = Outbox(
        channel=channel,
        kind=kind,
        recipient=recipient,
        subject=subject,
        body_sealed=sealer.seal(body.encode("utf-8"), context=_context(kind, recipient)),
        created_at=now,
        expires_at=None if lifetime is None else now + lifetime,
        attempts=0,
    )
    session.add(row)
    return row


def open_message(sealer: Sealer, row: Outbox) -> Message:
    """The message of ``row``, its body opened (raises if it was altered or moved)."""
    body = sealer.open(bytes(row.body_sealed), context=_context(row.kind, row.recipient))
    return Message(row.id, row.channel, row.kind, row.recipient, row.subject, body.decode())


def _drop_expired(session: Session, now: datetime) -> int:
    return rows_affected(session.execute(delete(Outbox).where(Outbox.expires_at <= now)))


def purge(session: Session, *, now: datetime | None = None) -> int:
    """Delete every message past its expiry, sent or not; commits; returns how many."""
    purged = _drop_expired(session, now or utcnow())
    session.commit()
    return purged


def deliver(session: Session, sealer: Sealer, sender: Sender, *, limit: int = 100) -> Delivery:
    """Purge what expired, then send what is due, oldest first: a message the sender
    accepted is deleted at once (committed message by message, so a crash resends at
    most one); one it refused stays queued with one more attempt."""
    purged = purge(session)
    sent = failed = 0
    rows = session.scalars(select(Outbox).order_by(Outbox.id).limit(limit)).all()
    for row in rows:
        try:
            sender.send(open_message(sealer, row))
        except SendError:
            row.attempts += 1
            failed += 1
        else:
            session.delete(row)
            sent += 1
        session.commit()
    return Delivery(sent=sent, failed=failed, purged=purged)
