"""The partner registry: organisms, the services they receive, SAML and OAuth settings.

docs/architecture.md ("Données"): services and their PAGM are directory data (``rcd_store``); this
package holds each organism's protocol settings and which services'
habilitations it may receive.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rcd_store.db import Base, UTCDateTime, utcnow
from rcd_store.models import Service

TOKEN_FORMATS = ("saml", "jwt")


class Partner(Base):
    """A partner organism (URSSAF, a payroll vendor...) and its token settings."""

    __tablename__ = "partner"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: the partner's identifier: the token audience (SAML entityID, else client_id, else a URN)
    identifier: Mapped[str] = mapped_column(String(400), unique=True)
    landing_url: Mapped[str | None] = mapped_column(String(2000))
    token_format: Mapped[str] = mapped_column(String(8), default="saml")
    token_lifetime_seconds: Mapped[int] = mapped_column(Integer, default=300)
    clock_skew_seconds: Mapped[int] = mapped_column(Integer, default=60)
    #: optional meanings it may receive beyond the defaults (e.g. "email")
    claims: Mapped[list[str]] = mapped_column(JSON, default=list)
    trusted_portal: Mapped[bool] = mapped_column(Boolean, default=False)
    api_audience: Mapped[str | None] = mapped_column(String(400))
    #: RFC 8935 push receiver of its Security Event Tokens (None: it polls, RFC 8936)
    event_receiver_url: Mapped[str | None] = mapped_column(String(2000))
    #: the widget's look for this partner: {"primary": "#RRGGBB", "text": "#RRGGBB",
    #: "logo_url": "https://...", "label": {"fr": "...", "en": "..."}} (validated on write)
    theme: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    services: Mapped[list[Service]] = relationship(
        secondary="partner_service", order_by=Service.code
    )
    saml: Mapped[SamlServiceProvider | None] = relationship(
        back_populates="partner", cascade="all, delete-orphan", uselist=False
    )
    clients: Mapped[list[OAuthClient]] = relationship(
        back_populates="partner", cascade="all, delete-orphan"
    )


class PartnerService(Base):
    """A service whose habilitations and PAGM the partner may receive."""

    __tablename__ = "partner_service"
    __table_args__ = (UniqueConstraint("partner_id", "service_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))


class SamlServiceProvider(Base):
    """SAML SP settings imported from the partner's metadata."""

    __tablename__ = "saml_sp"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partner.id", ondelete="CASCADE"), unique=True
    )
    entity_id: Mapped[str] = mapped_column(String(400), unique=True)
    metadata_xml: Mapped[str] = mapped_column(Text)
    #: [{"binding", "url", "index", "default"}]
    acs: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    slo: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    certificates_pem: Mapped[list[str]] = mapped_column(JSON, default=list)
    authn_requests_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    want_assertions_signed: Mapped[bool] = mapped_column(Boolean, default=True)
    #: where the metadata is fetched again on a schedule (None: imported from a file)
    metadata_url: Mapped[str | None] = mapped_column(String(2000))
    #: the partner's key for its metadata's own signature (PEM certificates); when set, a
    #: fetched document must carry a valid signature by one of them
    metadata_signing_pem: Mapped[list[str]] = mapped_column(JSON, default=list)
    metadata_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    metadata_next_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the last refresh's failure, kept for the operator until one succeeds
    metadata_error: Mapped[str | None] = mapped_column(Text)
    #: refreshes failed in a row since the last success (the backoff doubles with each)
    metadata_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    partner: Mapped[Partner] = relationship(back_populates="saml")


class OAuthClient(Base):
    """An OAuth 2 / OpenID Connect client of a partner."""

    __tablename__ = "oauth_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partner.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(200), unique=True)
    #: SHA-256 of a generated 256-bit secret (high entropy: no slow hash needed)
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    jwks: Mapped[dict[str, object] | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(2000))
    #: OpenID Connect Front-Channel Logout 1.0: loaded (with iss and sid) at logout
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    #: OpenID Connect Back-Channel Logout 1.0: logout tokens POSTed there (idp.events)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    partner: Mapped[Partner] = relationship(back_populates="clients")

    @property
    def public(self) -> bool:
        return self.token_endpoint_auth_method == "none"
