"""Tokens issued by the service: identity vectors from the directory, signed and audited.

Minimisation: a token for a partner carries only the PAGM and habilitations of
that partner's services (docs/profile.md, "PAGM et minimisation").

Each kind of JWT we sign has its own header ``typ``, and each place that accepts one
of our tokens asks for its kind (stops token confusion: a token minted for one use
presented for another whose audience happens to be the same string):
:data:`INTEROPS_R_TYP` for Interops-R navigation and DSN login tokens (the profile's
``JWT``), :data:`ACCESS_TOKEN_TYP` for OAuth access tokens (RFC 9068), and no ``typ``
at all for OpenID Connect ID tokens (:data:`ID_TOKEN_TYP`: their audience is a
client id, which may also be a partner's identifier).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.tokens.signing import keyring
from keys.model import KeyUse
from partners import services as registry
from partners.models import Partner
from partners.services import default_identifier
from rcd_store import audit
from rcd_store.errors import NotFound
from rcd_store.models import Declarant, Service, ServicePagm, partner_key
from rcd_store.services import active_habilitations, get_declarant
from token_suite import jwt as interops_jwt
from token_suite import saml as interops_saml
from token_suite.vector import ACR_PASSWORD, Habilitation, IdentityVector

#: ``typ`` of an Interops-R token for a partner (navigation, DSN login)
INTEROPS_R_TYP = "JWT"
#: ``typ`` of an OAuth access token (RFC 9068)
ACCESS_TOKEN_TYP = "at+jwt"
#: ``typ`` of an OpenID Connect ID token: none (told apart from Interops-R tokens by it)
ID_TOKEN_TYP: str | None = None


def partner_services(session: Session, partner: str) -> list[Service]:
    """The services hosted by ``partner`` (by name, case-insensitive)."""
    services = list(
        session.scalars(select(Service).where(Service.partner_key == partner_key(partner)))
    )
    if not services:
        raise NotFound(f"partenaire inconnu ou sans service : {partner!r}")
    return services


def vector_for(
    session: Session,
    declarant: Declarant,
    services: Sequence[Service],
    *,
    acr: str = ACR_PASSWORD,
    auth_time: datetime | None = None,
    session_index: str | None = None,
    include_email: bool = False,
) -> IdentityVector:
    """The declarant's vector for ``services`` only: their PAGM and habilitations, nothing else."""
    service_ids = {s.id: s for s in services}
    habilitations = [
        h for h in active_habilitations(session, declarant.id) if h.service_id in service_ids
    ]
    pagm_rows = session.execute(
        select(ServicePagm.service_id, ServicePagm.role, ServicePagm.pagm).where(
            ServicePagm.service_id.in_(list(service_ids))
        )
    ).all()
    pagm_of = {(service_id, role): code for service_id, role, code in pagm_rows}
    pagm = sorted(
        {
            pagm_of[(h.service_id, h.role)]
            for h in habilitations
            if (h.service_id, h.role) in pagm_of
        }
    )
    rights = sorted(
        {
            Habilitation(service_ids[h.service_id].code, h.establishment.siret, h.role)
            for h in habilitations
        }
    )
    home = declarant.home_establishment
    return IdentityVector(
        subject=declarant.id,
        siret=home.siret if home else None,
        family_name=declarant.last_name,
        given_name=declarant.first_name,
        email=declarant.email if include_email else None,
        pagm=tuple(pagm),
        habilitations=tuple(rights),
        acr=acr,
        auth_time=auth_time,
        session_index=session_index,
    )


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    format: str
    audience: str
    expires_at: datetime


def issue(
    app: Flask,
    session: Session,
    vector: IdentityVector,
    *,
    fmt: str,
    audience: str,
    recipient: str | None = None,
    lifetime: timedelta | None = None,
    now: datetime | None = None,
    in_response_to: str | None = None,
) -> IssuedToken:
    """Sign ``vector`` as a SAML jeton or an Interops-R JWT, and audit it (by ids only).

    ``in_response_to``: the SAML AuthnRequest ID this jeton answers (SP-initiated SSO)."""
    now = now or datetime.now(UTC)
    lifetime = lifetime or timedelta(seconds=int(app.config["TOKEN_LIFETIME_SECONDS"]))
    if fmt == "saml":
        token_id = interops_saml.new_id()
        token = interops_saml.issue(
            vector,
            signer=keyring(app).active(KeyUse.SAML),
            issuer=app.config["SAML_ENTITY_ID"],
            audience=audience,
            recipient=recipient or audience,
            now=now,
            lifetime=lifetime,
            in_response_to=in_response_to,
            assertion_id=token_id,
        ).decode("utf-8")
    elif fmt == "jwt":
        token_id = secrets.token_urlsafe(18)
        token = interops_jwt.issue(
            vector,
            signer=keyring(app).active(KeyUse.JWT),
            issuer=app.config["BASE_URL"],
            audience=audience,
            now=now,
            lifetime=lifetime,
            typ=INTEROPS_R_TYP,
            jti=token_id,
        )
    else:
        raise ValueError(f"format inconnu : {fmt!r} (saml ou jwt)")
    audit.record(
        session,
        "token.issued",
        actor=vector.subject,
        target=audience,
        data={"format": fmt, "id": token_id, "pagm": list(vector.pagm)},
    )
    return IssuedToken(token, token_id, fmt, audience, now + lifetime)


def _registered(session: Session, name: str) -> Partner | None:
    try:
        return registry.get_partner(session, name)
    except NotFound:
        return None


def issue_for_partner(
    app: Flask,
    session: Session,
    *,
    declarant_id: str,
    partner: str,
    service: str | None,
    fmt: str | None,
) -> IssuedToken:
    """``idp token issue``: a token for one partner, minimised to its services (or one).

    A registered partner gets its identifier as audience, its ACS as recipient,
    its format, lifetime and allowed claims; a partner known only as the host of
    services gets the defaults."""
    declarant = get_declarant(session, declarant_id)
    registered = _registered(session, partner)
    services = (
        registry.services_of(session, registered)
        if registered
        else partner_services(session, partner)
    )
    if service is not None:
        services = [s for s in services if s.code == service.strip().upper()]
        if not services:
            raise NotFound(f"service {service!r} inconnu chez le partenaire {partner!r}")
    include_email = bool(registered and "email" in (registered.claims or []))
    vector = vector_for(
        session, declarant, services, auth_time=datetime.now(UTC), include_email=include_email
    )
    if registered is None:
        return issue(app, session, vector, fmt=fmt or "saml", audience=default_identifier(partner))
    recipient = None
    if registered.saml is not None and registered.saml.acs:
        recipient = str(
            min(registered.saml.acs, key=lambda a: (not a["default"], a["index"] or 0))["url"]
        )
    return issue(
        app,
        session,
        vector,
        fmt=fmt or registered.token_format,
        audience=registered.identifier,
        recipient=recipient or registered.landing_url,
        lifetime=timedelta(seconds=registered.token_lifetime_seconds),
    )
