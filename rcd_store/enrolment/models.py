"""Tables of enrolment: one-time codes and links, enrolments, join requests.

People are named by declarant id; their names and emails stay in the declarant table
(purgeable). A code or link is kept as its SHA-256 only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rcd_store.db import Base, UTCDateTime, utcnow


class OneTimeCode(Base):
    """A single-use, expiring secret (link or letter code), stored hashed."""

    __tablename__ = "one_time_code"
    __table_args__ = (Index("ix_one_time_code_subject", "purpose", "subject"),)

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Enrolment(Base):
    """A person enrolling a company: email to verify, then candidate administrator,
    then administrator (activation code or co-optation), or refused by the legal
    representative's objection."""

    __tablename__ = "enrolment"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), index=True
    )
    establishment_id: Mapped[int] = mapped_column(
        ForeignKey("establishment.id", ondelete="CASCADE")
    )
    declarant_id: Mapped[str | None] = mapped_column(
        ForeignKey("declarant.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JoinRequest(Base):
    """A person asking to join an enrolled company: email to verify, then pending until
    an administrator accepts (with habilitations) or refuses it."""

    __tablename__ = "join_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), index=True
    )
    establishment_id: Mapped[int] = mapped_column(
        ForeignKey("establishment.id", ondelete="CASCADE")
    )
    declarant_id: Mapped[str | None] = mapped_column(
        ForeignKey("declarant.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(80))
