"""SAML 2.0 single sign-on: ``/saml/sso`` (HTTP-Redirect and HTTP-POST AuthnRequests).

The Issuer must be a registered partner; its request signature is checked when its
metadata says ``AuthnRequestsSigned`` (or whenever it signs); the response goes only
to an AssertionConsumerService registered for it (never to an address taken from the
request alone: stops assertion theft through an open redirect). ForceAuthn and
IsPassive are honoured. While the user logs in, the pending request travels in a
state signed by the server (nothing the browser could alter is trusted). Single
Logout is :mod:`idp.saml.slo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp.auth import login
from idp.saml import receiving as r
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.stores.generations import generations
from idp.tokens import issuing as tokens
from idp.tokens.holder import read_rule, service_codes, vector_of
from idp.web import csrf
from partners import services as registry
from partners.models import Partner, SamlServiceProvider
from rcd_store.models import Service
from token_suite import bindings as b
from token_suite import messages as m

bp = Blueprint("sso_saml", __name__)
bp.register_error_handler(b.MessageError, r.refused)

#: How long a pending AuthnRequest waits for the user to log in.
PENDING_MAX_AGE = timedelta(minutes=20)


def init_app(app: Flask) -> None:
    """SAML POST bindings come from partner sites (their messages are signed: no CSRF
    form token)."""
    csrf.exempt(app, bp.name)


# ----------------------------------------------------------------------- SSO


@dataclass(frozen=True)
class Pending:
    """An accepted AuthnRequest waiting for the user (kept in a server-signed state)."""

    sp: str
    request_id: str
    acs: str
    relay_state: str | None
    force: bool
    passive: bool
    at: str  # when we received it (ISO 8601, UTC)

    @property
    def received_at(self) -> datetime:
        return datetime.fromisoformat(self.at)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="idp.saml.sso.pending")


def _acs(sp: SamlServiceProvider, authn: m.AuthnRequest) -> str:
    """The registered HTTP-POST ACS the response goes to (exact match only)."""
    if authn.protocol_binding not in (None, b.BINDING_POST):
        raise b.MessageError("ProtocolBinding non pris en charge (HTTP-POST seulement)")
    candidates = registry.post_acs(sp)
    if authn.acs_url is not None:
        if authn.acs_url not in [a["url"] for a in candidates]:
            raise b.MessageError("AssertionConsumerServiceURL non enregistrée pour ce partenaire")
        return authn.acs_url
    if authn.acs_index is not None:
        for endpoint in candidates:
            if endpoint.get("index") == authn.acs_index:
                return str(endpoint["url"])
        raise b.MessageError("AssertionConsumerServiceIndex inconnu pour ce partenaire")
    chosen = registry.default_acs(sp)
    if chosen is None:
        raise b.MessageError("aucune AssertionConsumerService HTTP-POST enregistrée")
    return chosen


@dataclass(frozen=True)
class Audience:
    """A SAML partner as SSO answers it: its SP and partner rows (detached, read-only,
    loaded), the services it receives and their PAGM; cached per process."""

    sp: SamlServiceProvider
    partner: Partner
    services: list[Service]
    pagm: dict[tuple[int, str], str]

    @property
    def codes(self) -> dict[int, str]:
        """Service id -> code of the partner's services."""
        return service_codes(self.services)


def _load_audience(entity_id: str) -> Callable[[Session], Audience | None]:
    def load(session: Session) -> Audience | None:
        try:
            sp = r.service_provider(session, entity_id)
        except b.MessageError:
            return None
        services = registry.services_of(session, sp.partner)
        pagm = tokens.service_pagm(session, [s.id for s in services])
        return Audience(sp, sp.partner, services, pagm)

    return load


def audience(entity_id: str) -> Audience:
    """The partner ``entity_id`` from the process's cache of partners and services
    (:mod:`idp.stores.generations`: a change anywhere is seen within a second);
    :class:`~token_suite.bindings.MessageError` for an unknown one."""
    registry_ = generations()
    key = ("saml-sso", entity_id[:1024], registry_.current("services"))
    found = registry_.cached("partners", key, _load_audience(entity_id[:1024]))
    if found is None:
        raise b.MessageError("émetteur inconnu : aucun partenaire SAML enregistré sous ce nom")
    return found


@bp.route("/saml/sso", methods=["GET", "POST"])
def sso() -> Response:
    """Receive an AuthnRequest (HTTP-Redirect or HTTP-POST) and answer it."""
    now = r.now()
    incoming, root, sp = r.receive(
        "SAMLRequest",
        ["AuthnRequest"],
        required=lambda sp: sp.authn_requests_signed,
        lookup=lambda entity_id: audience(entity_id).sp,
    )
    authn = m.authn_request(root, destination=f"{r.base()}/saml/sso", now=now)
    pending = Pending(
        sp=sp.entity_id,
        request_id=authn.id,
        acs=_acs(sp, authn),
        relay_state=incoming.relay_state,
        force=authn.force_authn,
        passive=authn.is_passive,
        at=now.isoformat(),
    )
    return _proceed(pending, resumed=False)


@bp.get("/saml/sso/reprise")
def resume() -> Response:
    """Come back from the login page and answer the pending request."""
    try:
        data = _serializer().loads(
            request.args.get("etat", ""), max_age=int(PENDING_MAX_AGE.total_seconds())
        )
        pending = Pending(**data)
    except (BadSignature, TypeError):
        raise b.MessageError(
            "demande expirée ou altérée : recommencez depuis le site partenaire"
        ) from None
    sp = audience(pending.sp).sp
    if pending.acs not in [a["url"] for a in registry.post_acs(sp)]:
        raise b.MessageError("AssertionConsumerService retirée entre-temps")
    return _proceed(pending, resumed=True)


def _login_redirect(pending: Pending) -> Response:
    state = _serializer().dumps(asdict(pending))
    return login.login_required(
        f"/saml/sso/reprise?{urlencode({'etat': state})}", force=pending.force
    )


def _proceed(pending: Pending, *, resumed: bool) -> Response:
    row = sessions.current_session()
    if row is not None and (not pending.force or row.auth_time > pending.received_at):
        return _success(pending, row)
    if pending.passive:
        return _status(pending, [m.RESPONDER, m.NO_PASSIVE])
    if resumed and pending.force and row is not None:
        # back from the login page without a new authentication: refuse, do not loop
        return _status(pending, [m.RESPONDER, m.AUTHN_FAILED])
    return _login_redirect(pending)


def _success(pending: Pending, row: SsoRecord) -> Response:
    """The jeton for a live session: reads the rule fresh (:mod:`idp.tokens.holder`: the
    declarant and their rights in force on the partner's services, in one statement);
    the audit event is committed by the process's group commit before the page is built
    (and the partner joins the session's participants, the first time); the partner, its
    services and their PAGM come from the process's cache."""
    session = db.session()
    target = audience(pending.sp)
    partner = target.partner
    who, held = read_rule(session, row.declarant_id, target.codes)
    if who is None or not who.active:
        return _status(pending, [m.RESPONDER, m.REQUEST_DENIED])
    vector = vector_of(
        who,
        target.codes,
        held,
        target.pagm,
        acr=row.acr,
        auth_time=row.auth_time,
        session_index=row.sid,
        include_email="email" in (partner.claims or []),
    )
    participant = {
        "partner": partner.name,
        "protocol": "saml",
        "name_id": who.id,
        "session_index": row.sid,
    }
    if participant not in row.participants:
        sessions.add_participant(session, row, participant)
    session.commit()  # the reads' transaction ends (and a new participant is written)
    issued = tokens.token_service().issue(
        session,
        vector,
        fmt="saml",
        audience=target.sp.entity_id,
        recipient=pending.acs,
        lifetime=timedelta(seconds=partner.token_lifetime_seconds),
        in_response_to=pending.request_id,
        grouped=True,
    )
    return r.post_page(
        pending.acs,
        "SAMLResponse",
        b.encode_post(issued.token.encode("utf-8")),
        pending.relay_state,
    )


def _status(pending: Pending, codes: list[str]) -> Response:
    """A signed Response without assertion (NoPassive, AuthnFailed...) to the registered ACS."""
    document = m.status_response(
        issuer=r.entity_id(),
        destination=pending.acs,
        in_response_to=pending.request_id,
        codes=codes,
        now=r.now(),
        signer=r.signer(),
    )
    return r.post_page(pending.acs, "SAMLResponse", b.encode_post(document), pending.relay_state)
