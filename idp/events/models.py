"""The events outbox: one row per event and receiver, in the receiver's own sequence.

A receiver is a partner's SET stream (``set:<partner id>``) or an OpenID Connect
client's back-channel logout endpoint (``logout:<client_id>``). Rows stay until their
receiver acknowledged them (or refused them: recorded), then are pruned after a retention.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rcd_store.db import Base, UTCDateTime, utcnow

#: the two kinds of receiver (the prefix of ``SecurityEventRow.receiver``)
SET_CHANNEL = "set"
LOGOUT_CHANNEL = "logout"


class SecurityEventRow(Base):
    """An event waiting for, or delivered to, one receiver."""

    __tablename__ = "security_event"
    __table_args__ = (UniqueConstraint("receiver", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receiver: Mapped[str] = mapped_column(String(220), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partner.id", ondelete="CASCADE"), index=True
    )
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(64))
    #: the token's claims but ``iss``, ``iat`` and ``exp`` (added when it is signed)
    claims: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the receiver acknowledged (or refused) it; None while it waits
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    #: acknowledged | refused | polled
    outcome: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(Text)


class EventStream(Base):
    """A receiver's last sequence number: its row is locked by each transaction adding
    to it, so a receiver's events commit in the order of their numbers."""

    __tablename__ = "security_event_stream"

    receiver: Mapped[str] = mapped_column(String(220), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
