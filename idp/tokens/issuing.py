"""Tokens issued by the service: identity vectors from the directory, signed and audited.

Minimisation: a token for a partner carries only the PAGM and habilitations of
that partner's services (docs/profile.md, "PAGM et minimisation").

Each kind of JWT we sign has its own header ``typ``, and each place that accepts one
of our tokens asks for its kind (stops token confusion: a token minted for one use
presented for another whose audience happens to be the same string):
:data:`INTEROPS_R_TYP` for Interops-R navigation tokens (the profile's ``JWT``),
:data:`DSN_LOGIN_TYP` for the machine login's tokens (same partner audience, another
use), :data:`ACCESS_TOKEN_TYP` for OAuth access tokens (RFC 9068), and no ``typ``
at all for OpenID Connect ID tokens (:data:`ID_TOKEN_TYP`: their audience is a
client id, which may also be a partner's identifier).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Config, Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.stores.group_commit import group_commit
from idp.stores.models import IssuedToken as IssuedTokenRow
from idp.tokens.holder import Holder, service_codes, vector_of
from idp.tokens.signing import keyring
from keys.keyring import Keyring
from keys.model import KeyUse
from partners import services as registry
from partners.models import Partner
from partners.services import default_identifier
from rcd_store import audit
from rcd_store.errors import NotFound
from rcd_store.models import (
    Declarant,
    DeclarantStatus,
    Establishment,
    Service,
    ServicePagm,
    partner_key,
)
from rcd_store.models import Habilitation as HabilitationRow
from rcd_store.services import active_habilitations, get_declarant
from token_suite import jwt as interops_jwt
from token_suite import saml as interops_saml
from token_suite.vector import ACR_PASSWORD, IdentityVector

#: ``typ`` of an Interops-R token for a partner (navigation)
INTEROPS_R_TYP = "JWT"
#: ``typ`` of a DSN machine login token (``Authorization: DSNLogin jeton=...``)
DSN_LOGIN_TYP = "dsnlogin+jwt"
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
    in_force: Sequence[HabilitationRow] | None = None,
    pagm_map: Mapping[tuple[int, str], str] | None = None,
) -> IdentityVector:
    """The declarant's vector for ``services`` only: their PAGM and habilitations, nothing else.

    ``in_force``: the declarant's rights in force as the caller just read them
    (``active_habilitations``), and ``pagm_map``: the services' PAGM by (service id, role)
    as the caller caches them (:func:`service_pagm`); each read here when not given."""
    codes = service_codes(services)
    if in_force is None:
        in_force = active_habilitations(session, declarant.id)
    held = [
        (h.service_id, h.establishment.siret, h.role) for h in in_force if h.service_id in codes
    ]
    pagm_of = service_pagm(session, list(codes)) if pagm_map is None else pagm_map
    home = declarant.home_establishment
    who = Holder(
        declarant.id,
        declarant.status == DeclarantStatus.ACTIVE.value,
        declarant.last_name,
        declarant.first_name,
        declarant.email,
        home.siret if home else None,
    )
    return vector_of(
        who,
        codes,
        held,
        pagm_of,
        acr=acr,
        auth_time=auth_time,
        session_index=session_index,
        include_email=include_email,
    )


def rights_in_force(
    session: Session, declarant: Declarant
) -> tuple[list[HabilitationRow], list[Establishment]]:
    """The declarant's rights in force (``active_habilitations``) and, with one more query,
    every establishment a token of theirs names (their rights' and their home one): the
    caller holds the second list while it builds the vector (the session's identity map
    keeps only what is referenced), so that none is read one by one."""
    in_force = active_habilitations(session, declarant.id)
    wanted = {h.establishment_id for h in in_force} | {declarant.home_establishment_id}
    found = session.scalars(select(Establishment).where(Establishment.id.in_(wanted))).all()
    return in_force, list(found)


def service_pagm(session: Session, service_ids: Sequence[int]) -> dict[tuple[int, str], str]:
    """The PAGM of ``service_ids`` by (service id, role)."""
    rows = session.execute(
        select(ServicePagm.service_id, ServicePagm.role, ServicePagm.pagm).where(
            ServicePagm.service_id.in_(list(service_ids))
        )
    ).all()
    return {(service_id, role): code for service_id, role, code in rows}


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    format: str
    audience: str
    expires_at: datetime


@dataclass(frozen=True)
class AccessRecord:
    """What a token answer says of an access token: its id, scope and expiry."""

    jti: str
    scope: str
    expires_at: datetime


#: ``acr`` of a machine token (``client_credentials``): no person authenticated
MACHINE_ACR = "urn:interops:acr:machine"

#: ``app.extensions`` key of the app's :class:`TokenService`
EXTENSION = "idp.tokens"
#: an OAuth access token never lives longer than this, whatever the settings
ACCESS_TOKEN_MAX = timedelta(minutes=15)


class TokenService:
    """The one place the service signs a token for someone else: SAML jetons, Interops-R
    JWTs (navigation, DSN login, ``idp token issue``) and OAuth access tokens. Each is
    signed by the first active key of its use, recorded when it can be revoked, and
    audited by ids only (never the token). Built once per app by :func:`init_app`; it
    reads the app's settings when it issues (issuer, lifetimes) and keeps no app."""

    def __init__(self, config: Config, keys: Keyring) -> None:
        self._config = config
        self._keys = keys

    def issue(
        self,
        session: Session | None,
        vector: IdentityVector,
        *,
        fmt: str,
        audience: str,
        recipient: str | None = None,
        lifetime: timedelta | None = None,
        now: datetime | None = None,
        in_response_to: str | None = None,
        typ: str = INTEROPS_R_TYP,
        events: Sequence[tuple[str, str | None, str | None, dict[str, Any]]] = (),
        grouped: bool = False,
    ) -> IssuedToken:
        """Sign ``vector`` as a SAML jeton or an Interops-R JWT, and audit it (by ids only).

        ``in_response_to``: the SAML AuthnRequest ID this jeton answers (SP-initiated SSO);
        ``typ``: the JWT's kind (:data:`DSN_LOGIN_TYP` for the machine login); ``events``:
        the caller's own audit events ``(kind, actor, target, data)``, appended after the
        token's in the same INSERT (a ``data`` value ``TOKEN_ID`` becomes the token's id);
        ``grouped`` (a request that writes nothing else): those events are committed by the
        process's group commit (:mod:`idp.stores.group_commit`) before this returns."""
        if session is None and not grouped:
            raise TypeError("an ungrouped token is audited in the caller's session")
        now = now or datetime.now(UTC)
        lifetime = lifetime or timedelta(seconds=int(self._config["TOKEN_LIFETIME_SECONDS"]))
        if fmt == "saml":
            token_id = interops_saml.new_id()
            token = interops_saml.issue(
                vector,
                signer=self._keys.active(KeyUse.SAML),
                issuer=self._config["SAML_ENTITY_ID"],
                audience=audience,
                recipient=recipient or audience,
                now=now,
                lifetime=lifetime,
                in_response_to=in_response_to,
                assertion_id=token_id,
            ).decode("utf-8")
        elif fmt == "jwt":
            token_id = secrets.token_urlsafe(18)
            token = self._jwt(vector, audience, now, lifetime, typ, token_id)
        else:
            raise ValueError(f"format inconnu : {fmt!r} (saml ou jwt)")
        data: dict[str, Any] = {"format": fmt, "id": token_id, "pagm": list(vector.pagm)}
        mine = ("token.issued", vector.subject, audience, data)
        trail = [mine, *(_with_id(e, token_id) for e in events)]
        if grouped or session is None:
            group_commit().write(trail)
        elif events:
            audit.record_many(session, trail)
        else:
            self._audit(session, vector, audience, data)
        return IssuedToken(token, token_id, fmt, audience, now + lifetime)

    def issue_access(
        self,
        session: Session,
        vector: IdentityVector,
        *,
        client_id: str,
        scope: str,
        audience: str,
        now: datetime,
        lifetime: timedelta | None = None,
        extra_claims: dict[str, Any] | None = None,
        family: str | None = None,
        acr: str | None = None,
        auth_time: datetime | None = None,
    ) -> tuple[str, IssuedTokenRow]:
        """An OAuth access token (``typ: at+jwt``, RFC 9068) for ``client_id``, at most
        the configured lifetime and never over 15 minutes; recorded in ``IssuedToken``
        (introspection, revocation: only its SHA-256 is kept) and audited, in
        ``session``."""
        token, record, data = self._access(
            vector, client_id, scope, audience, now, lifetime, extra_claims
        )
        row = IssuedTokenRow(
            jti=record.jti,
            kind="access",
            client_id=client_id,
            subject=vector.subject,
            scope=scope,
            audience=audience,
            token_hash=hashlib.sha256(token.encode("utf-8")).hexdigest(),
            issued_at=now,
            expires_at=record.expires_at,
            family=family,
            acr=acr,
            auth_time=auth_time,
        )
        session.add(row)
        self._audit(session, vector, audience, data)
        return token, row

    def issue_grouped_access(
        self, vector: IdentityVector, *, client_id: str, scope: str, audience: str, now: datetime
    ) -> tuple[str, AccessRecord]:
        """:meth:`issue_access` for a machine token (``client_credentials``, a request that
        writes nothing else): its audit event, its only trace, is committed by the
        process's group commit (:mod:`idp.stores.group_commit`) before this returns. No
        ``IssuedToken`` row: introspection, revocation and the bearer checks read such a
        token back from itself once verified (:func:`idp.tokens.own.machine_token`), and
        a revoked one gets its row then (the revocation list)."""
        token, record, data = self._access(vector, client_id, scope, audience, now, None, None)
        data["pagm"] = list(vector.pagm)
        group_commit().write([("token.issued", vector.subject, audience, data)])
        return token, record

    def _access(
        self,
        vector: IdentityVector,
        client_id: str,
        scope: str,
        audience: str,
        now: datetime,
        lifetime: timedelta | None,
        extra_claims: dict[str, Any] | None,
    ) -> tuple[str, AccessRecord, dict[str, Any]]:
        """The signed access token, what its answer says of it, its audit data."""
        ceiling = min(
            timedelta(seconds=int(self._config["ACCESS_TOKEN_LIFETIME_SECONDS"])),
            ACCESS_TOKEN_MAX,
        )
        lifetime = min(lifetime, ceiling) if lifetime else ceiling
        jti = secrets.token_urlsafe(18)
        claims = {**(extra_claims or {}), "client_id": client_id, "scope": scope}
        token = self._jwt(vector, audience, now, lifetime, ACCESS_TOKEN_TYP, jti, claims)
        data: dict[str, Any] = {
            "format": "jwt",
            "kind": "access",
            "id": jti,
            "client_id": client_id,
        }
        return token, AccessRecord(jti, scope, now + lifetime), data

    def _jwt(
        self,
        vector: IdentityVector,
        audience: str,
        now: datetime,
        lifetime: timedelta,
        typ: str,
        jti: str,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        return interops_jwt.issue(
            vector,
            signer=self._keys.active(KeyUse.JWT),
            issuer=self._config["BASE_URL"],
            audience=audience,
            now=now,
            lifetime=lifetime,
            typ=typ,
            jti=jti,
            extra_claims=extra_claims,
        )

    @staticmethod
    def _audit(
        session: Session, vector: IdentityVector, audience: str, data: dict[str, Any]
    ) -> None:
        data["pagm"] = list(vector.pagm)
        audit.record(session, "token.issued", actor=vector.subject, target=audience, data=data)


#: in an event given to :meth:`TokenService.issue`, the place of the token's id
TOKEN_ID = "<token id>"


def _with_id(
    event: tuple[str, str | None, str | None, dict[str, Any]], token_id: str
) -> tuple[str, str | None, str | None, dict[str, Any]]:
    kind, actor, target, data = event
    return kind, actor, target, {k: token_id if v == TOKEN_ID else v for k, v in data.items()}


def init_app(app: Flask) -> TokenService:
    """Build the app's token service (after :func:`idp.tokens.signing.init_app`)."""
    service = app.extensions[EXTENSION] = TokenService(app.config, keyring(app))
    return service


def token_service(app: Flask | None = None) -> TokenService:
    """The token service of ``app`` (the current app by default)."""
    service: TokenService = (app or current_app).extensions[EXTENSION]
    return service


def _registered(session: Session, name: str) -> Partner | None:
    try:
        return registry.get_partner(session, name)
    except NotFound:
        return None


def issue_for_partner(
    tokens: TokenService,
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
        return tokens.issue(
            session, vector, fmt=fmt or "saml", audience=default_identifier(partner)
        )
    recipient = registry.default_acs(registered.saml)
    return tokens.issue(
        session,
        vector,
        fmt=fmt or registered.token_format,
        audience=registered.identifier,
        recipient=recipient or registered.landing_url,
        lifetime=timedelta(seconds=registered.token_lifetime_seconds),
    )
