"""Letters and emails waiting to be sent, and the record of their delivery.

A message's body (a password-reset link, an activation code) is sealed under the
master key (the application's :class:`~rcd_store.sealing.Sealer`), bound to its kind
and recipient: someone who reads the database, a backup or a dump finds no usable
link, and a body moved to another recipient does not open. Once a message is sent,
given up or expired, its sealed body is deleted: the row stays as the delivery record
(state, attempts, ``sent_at``, the idempotency key, the last error).

Delivery (:func:`deliver`) goes through a pluggable :class:`Sender`. Each message has
an idempotency key (the email's Message-ID derives from it) and moves through states
committed around the send:

``pending`` --claim--> ``sending`` --handover--> ``handing`` --accepted--> ``sent``

- *claim*: ``UPDATE ... WHERE state = 'pending' AND claimed_by IS NULL``, committed
  before anything is sent: of two workers (two ``idp outbox send``, or one beside the
  background sender of ``idp serve``), one claims a message, the other skips it.
- *handover*: the sender calls ``handover()`` just before the step that cannot be taken
  back (for SMTP, the end of the DATA content; for a file, its renaming into place); the
  deliverer commits ``handing`` then (conditionally: a worker whose claim was taken
  over stops there).
- *accepted*: committed as ``sent`` with ``sent_at``, the body wiped.

A refusal before the end (:class:`SendError`) puts the message back to ``pending`` with
exponential backoff (``next_attempt_at``); after ``max_attempts`` attempts, or on a
permanent refusal (:class:`Rejected`), it is given up (``failed``). A message past its
expiry is not sent (``expired``).

Crash windows, the honest account. A worker killed while ``sending`` (connecting,
MAIL, RCPT) handed nothing over: once its claim is older than the lease, the message
goes back to ``pending`` and is sent by the next round. A worker killed while
``handing`` (between the point of no return and the commit of ``sent``: exactly the
instant between the server's 250 and our commit, or just before the 250) leaves a
message the server may or may not hold; nothing can tell which from our side. We
choose *at most once*: such a message is never sent again; once its claim is older
than the lease it becomes ``uncertain``, its body is wiped, and it is logged with its
Message-ID so that an operator can look for it in the mail server's log. The price: if
the crash came before the server accepted, that one message is lost (the user asks for
a new link or code); never two copies of a link or a code. A sender reporting that the
server's answer was lost after the handover (:class:`InDoubt`) is treated the same way
at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from rcd_store.db import rows_affected, utcnow
from rcd_store.errors import DirectoryError
from rcd_store.models import Outbox
from rcd_store.sealing import Sealer

log = logging.getLogger(__name__)

PENDING, SENDING, HANDING = "pending", "sending", "handing"
SENT, FAILED, EXPIRED, UNCERTAIN = "sent", "failed", "expired", "uncertain"
FINAL = (SENT, FAILED, EXPIRED, UNCERTAIN)
#: the longest wait between two attempts
MAX_DELAY = timedelta(hours=1)


@dataclass(frozen=True)
class Message:
    """One message as the sender sees it (the body in clear, in memory only)."""

    id: int
    channel: str
    kind: str
    recipient: str
    subject: str
    body: str
    idempotency_key: str = ""
    created_at: datetime | None = None


class SendError(DirectoryError):
    """A sender could not hand the message over now (it stays queued; try again later)."""

    http_status = 503


class Rejected(SendError):
    """The message can never be handed over (a permanent refusal): it is given up."""


class InDoubt(SendError):
    """The message may have been handed over (the answer was lost): never sent again."""


class Sender(Protocol):
    """Hands a message to the mail or letter service: calls ``handover()`` right before
    the step that cannot be taken back, raises :class:`SendError` (or a subclass) when
    the message was not handed over (any other error is a defect and propagates)."""

    def send(self, message: Message, handover: Callable[[], None]) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """``first_delay`` seconds before the second attempt, doubling after each failure
    (at most :data:`MAX_DELAY`); given up after ``max_attempts``; a claim older than
    ``lease`` seconds belongs to a worker presumed dead."""

    first_delay: float = 30.0
    max_attempts: int = 8
    lease: float = 300.0

    def delay(self, attempts: int) -> timedelta:
        seconds = self.first_delay * 2 ** max(attempts - 1, 0)
        return min(timedelta(seconds=seconds), MAX_DELAY)


@dataclass(frozen=True)
class Delivery:
    """What one round did: ``sent``; ``failed`` (kept for a later attempt); ``purged``
    (expired unsent); ``gave_up``; ``uncertain``; ``recovered`` (claims of dead workers
    put back to pending)."""

    sent: int
    failed: int
    purged: int
    gave_up: int = 0
    uncertain: int = 0
    recovered: int = 0


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
    """Queue a message in the caller's transaction, its body sealed; ``lifetime``: given
    up unsent after it (a link that expires). Expired messages are closed in the same
    transaction, so the outbox never keeps dead links even before a sender runs."""
    now = utcnow()
    _expire(session, now)
    row = Outbox(
        channel=channel,
        kind=kind,
        recipient=recipient,
        subject=subject,
        body_sealed=sealer.seal(body.encode("utf-8"), context=_context(kind, recipient)),
        created_at=now,
        expires_at=None if lifetime is None else now + lifetime,
        attempts=0,
        state=PENDING,
        idempotency_key=secrets.token_hex(16),
        next_attempt_at=now,
    )
    session.add(row)
    return row


def open_message(sealer: Sealer, row: Outbox) -> Message:
    """The message of ``row``, its body opened (raises if it was altered, moved or wiped)."""
    if row.body_sealed is None:
        raise Rejected(f"message {row.id} : plus de contenu ({row.state})")
    body = sealer.open(bytes(row.body_sealed), context=_context(row.kind, row.recipient))
    return Message(
        row.id,
        row.channel,
        row.kind,
        row.recipient,
        row.subject,
        body.decode(),
        row.idempotency_key,
        row.created_at,
    )


def _close(state: str, now: datetime, error: str | None = None) -> dict[str, Any]:
    """The values that end a message: its state, the body wiped, the claim kept."""
    values: dict[str, Any] = {"state": state, "body_sealed": None, "closed_at": now}
    if state == SENT:
        values["sent_at"] = now
    if error is not None:
        values["last_error"] = error[:400]
    return values


def _expire(session: Session, now: datetime) -> int:
    return rows_affected(
        session.execute(
            update(Outbox)
            .where(Outbox.state == PENDING, Outbox.expires_at <= now)
            .values(**_close(EXPIRED, now, "expiré avant l'envoi"))
        )
    )


def purge(
    session: Session, *, now: datetime | None = None, keep_records: timedelta | None = None
) -> int:
    """Close every pending message past its expiry (body wiped, never sent); with
    ``keep_records``, delete the records of messages closed longer ago. Commits;
    returns how many expired."""
    now = now or utcnow()
    expired = _expire(session, now)
    if keep_records is not None:
        session.execute(
            delete(Outbox).where(Outbox.state.in_(FINAL), Outbox.closed_at <= now - keep_records)
        )
    session.commit()
    return expired


def recover(session: Session, policy: RetryPolicy, *, now: datetime | None = None) -> Delivery:
    """Claims older than the lease (their worker died): a message not yet handed over
    goes back to pending; one caught handing over becomes uncertain (module docstring).
    Commits."""
    now = now or utcnow()
    stale = now - timedelta(seconds=policy.lease)
    released = rows_affected(
        session.execute(
            update(Outbox)
            .where(Outbox.state == SENDING, Outbox.claimed_at <= stale)
            .values(**_RELEASED)
        )
    )
    doubtful = session.execute(
        select(Outbox.id, Outbox.idempotency_key).where(
            Outbox.state == HANDING, Outbox.claimed_at <= stale
        )
    ).all()
    for row_id, key in doubtful:
        session.execute(
            update(Outbox)
            .where(Outbox.id == row_id, Outbox.state == HANDING)
            .values(**_close(UNCERTAIN, now, "interrompu pendant la remise : non renvoyé"))
        )
        log.error("message %s (clé %s) peut-être remis : jamais renvoyé", row_id, key)
    session.commit()
    return Delivery(0, 0, 0, uncertain=len(doubtful), recovered=released)


def new_worker_id() -> str:
    """``host:pid:random``: who claims a message."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _due(now: datetime) -> Any:
    return and_(
        Outbox.state == PENDING,
        Outbox.claimed_by.is_(None),
        or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now),
        or_(Outbox.expires_at.is_(None), Outbox.expires_at > now),
    )


def _claim(session: Session, row_id: int, worker: str, now: datetime) -> bool:
    claimed = rows_affected(
        session.execute(
            update(Outbox)
            .where(Outbox.id == row_id, _due(now))
            .values(state=SENDING, claimed_by=worker, claimed_at=now, attempts=Outbox.attempts + 1)
        )
    )
    session.commit()
    return claimed == 1


#: a claim given back: the message is pending again
_RELEASED: dict[str, Any] = {"state": PENDING, "claimed_by": None, "claimed_at": None}


def _finish(session: Session, row_id: int, worker: str, **values: Any) -> None:
    session.execute(
        update(Outbox)
        .where(
            Outbox.id == row_id, Outbox.claimed_by == worker, Outbox.state.in_((SENDING, HANDING))
        )
        .values(**values)
    )
    session.commit()


class _Round:
    """One worker's round over the due messages (see :func:`deliver`)."""

    def __init__(
        self, session: Session, sealer: Sealer, sender: Sender, policy: RetryPolicy, worker: str
    ) -> None:
        self.session, self.sealer, self.sender = session, sealer, sender
        self.policy, self.worker = policy, worker
        self.counts = {"sent": 0, "failed": 0, "gave_up": 0, "uncertain": 0}

    def handover(self, row_id: int) -> Callable[[], None]:
        def commit_handing() -> None:
            moved = rows_affected(
                self.session.execute(
                    update(Outbox)
                    .where(
                        Outbox.id == row_id,
                        Outbox.claimed_by == self.worker,
                        Outbox.state == SENDING,
                    )
                    .values(state=HANDING)
                )
            )
            self.session.commit()
            if moved != 1:
                raise SendError(f"message {row_id} : réservation perdue, non remis")

        return commit_handing

    def one(self, row_id: int, now: datetime) -> None:
        if not _claim(self.session, row_id, self.worker, now):
            return  # another worker has it, or it is no longer due
        row = self.session.get(Outbox, row_id, populate_existing=True)  # as claimed
        assert row is not None
        try:
            message = open_message(self.sealer, row)
        except BaseException:  # altered, moved, or another master key: loud, nothing lost
            _finish(self.session, row_id, self.worker, **_RELEASED)
            raise
        key, message_attempts = row.idempotency_key, row.attempts
        self.session.commit()  # no transaction left open while the sender talks to its server
        try:
            self.sender.send(message, self.handover(row_id))
        except InDoubt as exc:
            log.error("message %s (clé %s) peut-être remis : %s", row_id, key, exc)
            self._end(row_id, "uncertain", _close(UNCERTAIN, now, str(exc)))
        except Rejected as exc:
            self._end(row_id, "gave_up", _close(FAILED, now, str(exc)))
        except SendError as exc:
            self._retry(row_id, message_attempts, now, str(exc))
        else:
            self._end(row_id, "sent", _close(SENT, utcnow()))

    def _retry(self, row_id: int, attempts: int, now: datetime, error: str) -> None:
        if attempts >= self.policy.max_attempts:
            error = f"abandonné après {attempts} tentatives : {error}"
            self._end(row_id, "gave_up", _close(FAILED, now, error))
        else:
            later = {
                "next_attempt_at": now + self.policy.delay(attempts),
                "last_error": error[:400],
            }
            self._end(row_id, "failed", _RELEASED | later)

    def _end(self, row_id: int, outcome: str, values: dict[str, Any]) -> None:
        _finish(self.session, row_id, self.worker, **values)
        self.counts[outcome] += 1


def deliver(
    session: Session,
    sealer: Sealer,
    sender: Sender,
    *,
    limit: int = 100,
    policy: RetryPolicy | None = None,
    worker: str | None = None,
    now: datetime | None = None,
) -> Delivery:
    """One round: recover dead workers' claims, close what expired, then send what is
    due, oldest first, one message at a time (claim, send, record: see the module's
    docstring). ``now`` stands for the clock (tests)."""
    policy = policy or RetryPolicy()
    worker = worker or new_worker_id()
    recovered = recover(session, policy, now=now)
    purged = purge(session, now=now)
    at = now or utcnow()
    due = session.scalars(select(Outbox.id).where(_due(at)).order_by(Outbox.id).limit(limit))
    work = _Round(session, sealer, sender, policy, worker)
    for row_id in due.all():
        work.one(row_id, now or utcnow())
    return Delivery(
        sent=work.counts["sent"],
        failed=work.counts["failed"],
        purged=purged,
        gave_up=work.counts["gave_up"],
        uncertain=work.counts["uncertain"] + recovered.uncertain,
        recovered=recovered.recovered,
    )


def states(session: Session) -> dict[str, int]:
    """How many messages are in each state."""
    rows = session.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all()
    return {state: count for state, count in rows}
