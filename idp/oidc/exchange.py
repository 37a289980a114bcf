"""Token exchange (RFC 8693) and JWT bearer (RFC 7523 2.1) at the token endpoint.

- token exchange: a partner API trades the declarant's token it received for one aimed
  at another partner's API, narrowed to the services both partners receive, with ``act``;
- JWT bearer: a partner asserts a declarant it has authenticated (``acr`` =
  :data:`idp.oidc.grants.ASSERTED_ACR`, no ``auth_time``).

Targets, scopes and the token response come from :mod:`idp.oidc.grants`, whose
docstring states the service agreement both grants enforce.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc7523 import JWTBearerGrant
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.asserted import NotAssertable, acting, assertable
from idp.oidc import registry
from idp.oidc.clients import (
    ASSERTION_MAX_LIFETIME,
    SIGNING_ALGS,
    Client,
    digest,
    issuer,
    query_client,
)
from idp.oidc.grants import (
    ACCESS_TOKEN_TYPE,
    ASSERTED_ACR,
    CONFIDENTIAL_METHODS,
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    Target,
    bearer,
    checked_scope,
    now_utc,
    requested_target,
    resolve_target,
)
from idp.oidc.limits import charge_client, count_failure, refuse_held_address
from idp.oidc.server import OAuthServer, ResourceOwner, issue_access_token, owner_vector
from idp.stores import db
from idp.stores.models import IssuedToken
from idp.stores.replay import replay_cache
from idp.tokens.issuing import vector_for
from idp.tokens.own import live_access_token
from partners.models import OAuthClient
from rcd_store.models import Declarant, DeclarantStatus
from token_suite.errors import InteropsError
from token_suite.vector import IdentityVector

# ------------------------------------------------------------------ token exchange


def verify_own_access_token(session: Session, token: str) -> tuple[IdentityVector, IssuedToken]:
    """One of our live access tokens (:func:`idp.tokens.own.live_access_token`: recorded,
    not revoked, verified against our JWKS); ``invalid_grant`` otherwise."""
    try:
        return live_access_token(session, token)
    except InteropsError as exc:
        raise InvalidGrantError(f"subject_token refuse : {exc.reason}") from exc


def _may_exchange(session: Session, client: OAuthClient, row: IssuedToken) -> bool:
    """A client exchanges only tokens meant for its partner: issued to one of the
    partner's clients, or aimed at the partner's own API (``api_audience``; stops a
    partner from exchanging tokens it intercepted elsewhere)."""
    partner = client.partner
    if partner.api_audience is not None and row.audience == partner.api_audience:
        return True
    holder = session.scalars(
        select(OAuthClient).where(OAuthClient.client_id == row.client_id)
    ).first()
    return holder is not None and holder.partner_id == partner.id


def narrowed(
    session: Session, subject: IdentityVector, target: Target, scope: str
) -> IdentityVector:
    """The subject's vector for ``target``: rights of the target's services, and among
    them only those the subject token carried (never more than either)."""
    pagm = set(subject.pagm)
    declarant = session.get(Declarant, subject.subject)
    if declarant is not None and declarant.status == DeclarantStatus.ACTIVE.value:
        fresh = vector_for(session, declarant, list(target.services), acr=subject.acr)
        carried = set(subject.habilitations)
        rights = tuple(h for h in fresh.habilitations if h in carried)
        codes = tuple(p for p in fresh.pagm if p in pagm)
    else:
        rights, codes = (), tuple(p for p in registry.declarant_pagm(target.services) if p in pagm)
    email = subject.email if "email" in (target.partner.claims or []) else None
    return replace(subject, pagm=codes, habilitations=rights, email=email, claims={})


def _refuse_a_person_no_longer_acting(session: Session, subject: str) -> None:
    """A subject token taken for a declarant since disabled or locked exchanges for
    nothing (:func:`idp.auth.asserted.acting`); a machine subject, a client id, is no
    declarant and passes."""
    declarant = session.get(Declarant, subject)
    if declarant is None:
        return
    try:
        acting(declarant)
    except NotAssertable as refused:
        raise InvalidGrantError(refused.description) from None


class TokenExchange(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """RFC 8693: ``subject_token`` = one of our access tokens meant for the client's
    partner; ``resource``/``audience`` = another partner's API under a service
    agreement (``invalid_target`` otherwise). The new token: aud = that resource, PAGM
    and habilitations narrowed (:func:`narrowed`), ``act`` = the exchanging client
    (nested over an earlier ``act``), never outliving the subject token."""

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("Echange de jetons non autorise pour ce client.")
        form = self.request.form
        if not form.get("subject_token"):
            raise InvalidRequestError("subject_token manquant.")
        if form.get("subject_token_type") not in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise InvalidRequestError("subject_token_type non pris en charge.")
        if form.get("requested_token_type") not in (None, ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise InvalidRequestError("requested_token_type non pris en charge.")
        if form.get("actor_token"):
            raise InvalidRequestError("actor_token non pris en charge.")
        self.request.client = client

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client.row
        session, now = db.session(), now_utc()
        subject, row = verify_own_access_token(session, self.request.form["subject_token"])
        if not _may_exchange(session, client, row):
            raise InvalidGrantError("subject_token destine a un autre partenaire.")
        _refuse_a_person_no_longer_acting(session, subject.subject)
        requested = requested_target(self.request.form, "resource", "audience")
        if requested is None:
            raise InvalidRequestError("resource ou audience requis.")
        target = resolve_target(client, requested)
        scope = checked_scope(client, self.request.payload.scope or row.scope, within=row.scope)
        vector = narrowed(session, subject, target, scope)
        act: dict[str, Any] = {"sub": client.client_id}
        if isinstance(subject.claims.get("act"), dict):
            act["act"] = subject.claims["act"]
        owner = (
            ResourceOwner(subject.subject, subject.auth_time, subject.acr)
            if subject.auth_time
            else None
        )
        token, new = issue_access_token(
            session,
            client,
            owner,
            scope,
            now=now,
            audience=target.audience,
            vector=vector,
            extra_claims={"act": act},
            family=row.family,
            lifetime=row.expires_at - now,
        )
        body = bearer(token, new, now)
        body["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(body)
        return 200, body, self.TOKEN_RESPONSE_HEADER


# ---------------------------------------------------------------------- jwt bearer


class JwtBearer(JWTBearerGrant):  # type: ignore[misc]
    """RFC 7523 2.1: an assertion signed with a key of the client's registered JWKS,
    ``iss`` = client_id, ``sub`` = a declarant its partner may assert (:mod:`idp.auth.asserted`),
    ``aud`` = our token endpoint, at most 10 minutes, ``jti`` once (shared replay cache:
    stops a replayed assertion)."""

    def get_audiences(self) -> list[str]:
        return [f"{issuer()}/oauth/token", issuer()]

    def resolve_issuer_client(self, issuer_id: str) -> Client | None:
        return query_client(issuer_id)

    def resolve_client_public_key(self, client: Client) -> KeySet:
        return KeySet.import_key_set(client.row.jwks or {"keys": []})  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str) -> dict[str, Any]:
        """The assertion's claims, signed by its issuer's key: the client authenticates
        so. An unknown issuer gets the bad signature's answer (no client enumeration),
        both counted against the address; the budget is charged once it verifies
        (:mod:`idp.oidc.limits`)."""
        refuse_held_address()
        _headers, claims = self.extract_assertion(assertion)
        client = (
            self.resolve_issuer_client(claims.get("iss"))
            if isinstance(claims.get("iss"), str)
            else None
        )
        token = self._signed_by(assertion, client) if client is not None else None
        if client is None or token is None:
            count_failure()
            raise InvalidGrantError("Assertion invalide.")
        self.verify_claims(token.claims)
        self._check_fresh(dict(token.claims))
        charge_client(client.get_client_id())
        return dict(token.claims)

    def _signed_by(self, assertion: str, client: Client) -> Any:
        """The decoded assertion when a key of ``client``'s JWKS signed it, else None."""
        try:
            return jose_jwt.decode(
                assertion, self.resolve_client_public_key(client), algorithms=SIGNING_ALGS
            )
        except (JoseError, ValueError):
            return None

    def _check_fresh(self, claims: dict[str, Any]) -> None:
        jti, exp, sub = claims.get("jti"), claims.get("exp"), claims.get("sub")
        if (
            not isinstance(jti, str)
            or not jti
            or not isinstance(exp, int)
            or not isinstance(sub, str)
        ):
            raise InvalidGrantError("Assertion sans jti, exp ou sub.")
        expires = datetime.fromtimestamp(exp, UTC)
        if expires - now_utc() > ASSERTION_MAX_LIFETIME:
            raise InvalidGrantError("Assertion trop longue (10 min au plus).")
        key = f"jwt-bearer:{digest(str(claims['iss']))}:{digest(jti)}"
        if replay_cache().seen(key, expires_at=expires + timedelta(seconds=self.LEEWAY)):
            raise InvalidGrantError("Assertion deja presentee.")

    def authenticate_user(self, subject: str) -> Declarant | None:
        """The declarant the client's partner may assert (:func:`idp.auth.asserted.assertable`:
        active, not locked, served by the partner); ``invalid_grant`` otherwise."""
        try:
            return assertable(db.session(), self.request.client.row.partner, subject)
        except NotAssertable as refused:
            raise InvalidGrantError(refused.description) from None

    def has_granted_permission(self, client: Client, user: Declarant) -> bool:
        return True  # decided with the subject, by the one rule of idp.asserted

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client.row
        declarant: Declarant | None = self.request.user
        if declarant is None:
            raise InvalidGrantError("Assertion sans declarant (sub).")
        session, now = db.session(), now_utc()
        scope = checked_scope(client, self.request.payload.scope)
        owner = ResourceOwner(declarant.id, now, ASSERTED_ACR)
        vector = replace(owner_vector(session, owner, client.partner, scope), auth_time=None)
        token, row = issue_access_token(session, client, None, scope, now=now, vector=vector)
        body = bearer(token, row, now)
        self.save_token(body)
        return 200, body, self.TOKEN_RESPONSE_HEADER


# ------------------------------------------------------------------------ wiring


def register(server: OAuthServer) -> OAuthServer:
    """Add token exchange and JWT bearer to the token endpoint."""
    for grant in (TokenExchange, JwtBearer):
        server.register_grant(grant)
    return server
