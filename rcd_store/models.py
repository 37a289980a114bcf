"""SQLAlchemy 2.0 models of the directory of declarants (RCD).

docs/architecture.md, "Données". Personal data (names, addresses, emails) stays in
these purgeable tables; the audit trail names people by declarant id only.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rcd_store.db import Base, UTCDateTime, utcnow


def partner_key(name: str) -> str:
    """A partner name folded for matching: case and inner spacing do not matter."""
    return " ".join(name.split()).casefold()


def new_declarant_id() -> str:
    """An opaque, never reused declarant id (128 random bits): the token subject."""
    return "D" + secrets.token_hex(16).upper()


class DeclarantStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    LOCKED = "locked"
    DISABLED = "disabled"


class CompanyRole(StrEnum):
    ADMINISTRATEUR = "ADMINISTRATEUR"
    CANDIDAT_AD = "CANDIDAT_AD"
    MEMBRE = "MEMBRE"


class HabilitationRole(StrEnum):
    DECLARANT = "DECLARANT"
    CONSULTATION = "CONSULTATION"


class ServiceState(StrEnum):
    PILOT = "pilot"
    OPEN = "open"
    CLOSED = "closed"


class MandateStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REVOKED = "revoked"


class Company(Base):
    __tablename__ = "company"

    id: Mapped[int] = mapped_column(primary_key=True)
    siren: Mapped[str] = mapped_column(String(9), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    representative: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    establishments: Mapped[list[Establishment]] = relationship(back_populates="company")


class Establishment(Base):
    __tablename__ = "establishment"
    #: a company's establishments in SIRET order, and SIRET prefix searches within one
    __table_args__ = (Index("ix_establishment_company_siret", "company_id", "siret"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), index=True
    )
    head_office: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    address: Mapped[str | None] = mapped_column(String(400))

    company: Mapped[Company] = relationship(back_populates="establishments")


class Declarant(Base):
    __tablename__ = "declarant"
    __table_args__ = (
        Index("ix_declarant_names", "last_name_key", "first_name_key"),
        # an email belongs to one declarant (docs/architecture.md, "Données")
        UniqueConstraint("email_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_declarant_id)
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name_key: Mapped[str] = mapped_column(String(100))
    first_name_key: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    email_key: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    home_establishment_id: Mapped[int | None] = mapped_column(ForeignKey("establishment.id"))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=DeclarantStatus.ACTIVE.value)
    #: sealed (AES-GCM under the master key) by the web service, never in clear
    totp_secret: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    home_establishment: Mapped[Establishment | None] = relationship()


class Role(Base):
    """A declarant's role in a company (administrator, candidate, member)."""

    __tablename__ = "company_role"
    __table_args__ = (UniqueConstraint("declarant_id", "company_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    declarant_id: Mapped[str] = mapped_column(ForeignKey("declarant.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Service(Base):
    __tablename__ = "service"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    partner_name: Mapped[str | None] = mapped_column(String(100))
    #: ``partner_name`` case- and space-folded (``partner_key``): the indexed lookup key
    partner_key: Mapped[str | None] = mapped_column(String(100), index=True)
    mission: Mapped[str | None] = mapped_column(String(40))
    numeric_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    min_acr: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=ServiceState.OPEN.value)
    identity_only: Mapped[bool] = mapped_column(Boolean, default=False)

    pagm: Mapped[list[ServicePagm]] = relationship(
        back_populates="service", cascade="all, delete-orphan", order_by="ServicePagm.role"
    )


class ServicePagm(Base):
    """The PAGM code agreed for a habilitation role on a service."""

    __tablename__ = "service_pagm"
    __table_args__ = (UniqueConstraint("service_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    pagm: Mapped[str] = mapped_column(String(80))

    service: Mapped[Service] = relationship(back_populates="pagm")


class PilotCompany(Base):
    """A company a pilot service (``Service.state == "pilot"``) is open to."""

    __tablename__ = "pilot_company"
    __table_args__ = (UniqueConstraint("service_id", "company_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Habilitation(Base):
    """Declarant x establishment x service x role; one row, revoked or not."""

    __tablename__ = "habilitation"
    __table_args__ = (
        UniqueConstraint("declarant_id", "establishment_id", "service_id", "role"),
        Index("ix_habilitation_declarant", "declarant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    declarant_id: Mapped[str] = mapped_column(ForeignKey("declarant.id", ondelete="CASCADE"))
    establishment_id: Mapped[int] = mapped_column(
        ForeignKey("establishment.id", ondelete="CASCADE")
    )
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16), default=HabilitationRole.DECLARANT.value)
    granted_by: Mapped[str | None] = mapped_column(String(80))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the access delay: a right counts from this instant (NULL: from its grant)
    effective_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(80))
    #: the mandate this right was granted under (NULL: the declarant's own company); it
    #: counts only while that mandate lives (rcd_store.mandates.rules)
    mandate_id: Mapped[int | None] = mapped_column(
        ForeignKey("mandate.id", ondelete="CASCADE"), index=True
    )

    establishment: Mapped[Establishment] = relationship()
    service: Mapped[Service] = relationship()


class MandateKind(StrEnum):
    CABINET = "cabinet"
    CGA_AGA = "cga_aga"
    CONCENTRATEUR = "concentrateur"


class Mandate(Base):
    """A client company lets a mandataire (an accounting firm, a CGA/AGA, a DSN
    concentrator) act for it on some services, optionally some establishments, from
    ``starts_at`` until ``ends_at`` (open-ended when NULL) or until it is ended."""

    __tablename__ = "mandate"
    __table_args__ = (
        CheckConstraint("client_company_id <> firm_company_id", name="not_self"),
        Index("ix_mandate_pair", "client_company_id", "firm_company_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    firm_company_id: Mapped[int] = mapped_column(
        ForeignKey("company.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default=MandateKind.CABINET.value)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: SIRETs of the client's establishments it covers (empty: all of them)
    establishments: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=MandateStatus.ACCEPTED.value)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Company] = relationship(foreign_keys=[client_company_id])
    firm: Mapped[Company] = relationship(foreign_keys=[firm_company_id])


class AuditEvent(Base):
    """Append-only, hash-chained event; each writer appends to its own segment."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("segment", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    segment: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str | None] = mapped_column(String(80))
    target: Mapped[str | None] = mapped_column(String(120))
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditKey(Base):
    """The key of the audit chain (one row, id 1), sealed under the master key together
    with the heads of the trail written before the chain was keyed (rcd_store.audit)."""

    __tablename__ = "audit_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Outbox(Base):
    """A letter or an email waiting to be sent, then the record of its delivery; its
    body (a reset link, a code) is sealed under the master key and wiped once the
    message is sent, given up or expired (rcd_store.outbox: states, claims, retries)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | letter
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str] = mapped_column(String(200))
    body_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: pending | sending | handing | sent | failed | expired | uncertain
    state: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    #: one per message, the email's Message-ID derives from it
    idempotency_key: Mapped[str] = mapped_column(
        String(64), unique=True, default=lambda: secrets.token_hex(16)
    )
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(400))
