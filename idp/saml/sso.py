"""SAML 2.0 identity provider endpoints: ``/saml/sso`` and ``/saml/slo``.

* SSO (HTTP-Redirect and HTTP-POST AuthnRequests): the Issuer must be a
  registered partner; its request signature is checked when its metadata says
  ``AuthnRequestsSigned`` (or whenever it signs); the response goes only to an
  AssertionConsumerService registered for it (never to an address taken from the
  request alone: stops assertion theft through an open redirect). ForceAuthn and
  IsPassive are honoured. While the user logs in, the pending request travels in
  a state signed by the server (nothing the browser could alter is trusted).
* SLO: a partner's LogoutRequest ends the browser's SSO session and is answered
  by a signed LogoutResponse at that partner's SLO address; the logout page uses
  :func:`logout_url` (registered for the app by :func:`init_app`) to
  send each SAML participant a signed LogoutRequest, whose LogoutResponse comes
  back here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode

from cryptography import x509
from flask import Blueprint, Flask, current_app, make_response, redirect, render_template, request
from flask import Response as FlaskResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp.auth import login
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.tokens import issuing as tokens
from idp.tokens.signing import keyring
from idp.web import csrf
from idp.web.answers import no_store
from keys.model import KeyUse, SigningKey
from partners import services as registry
from partners.models import SamlServiceProvider
from rcd_store import audit
from rcd_store.errors import NotFound
from rcd_store.models import Declarant, DeclarantStatus
from token_suite import bindings as b
from token_suite import messages as m

bp = Blueprint("sso_saml", __name__)

#: How long a pending AuthnRequest waits for the user to log in.
PENDING_MAX_AGE = timedelta(minutes=20)
MAX_RELAY_STATE = 1024
#: the pages of this module replace the site-wide CSP with their own ``frame-ancestors``
NEVER_FRAMED = "'none'"


def _now() -> datetime:
    return datetime.now(UTC)


def _base() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/")


def _signer() -> SigningKey:
    return keyring().active(KeyUse.SAML)


def _entity_id() -> str:
    return str(current_app.config["SAML_ENTITY_ID"])


@bp.errorhandler(b.MessageError)
def _refused(exc: b.MessageError) -> tuple[str, int]:
    """Every refusal is a page on our origin: nothing is redirected or posted anywhere."""
    current_app.logger.info("SAML refusé : %s", exc)
    return render_template("saml_error.html", reason=exc.reason), 400


# ------------------------------------------------------------------ incoming


@dataclass(frozen=True)
class Incoming:
    """A SAML message as received, before any of it is trusted."""

    xml: bytes
    relay_state: str | None
    redirect: b.RedirectParameters | None


def _incoming(kind: str) -> Incoming:
    if request.method == "GET":
        params = b.redirect_parameters(request.query_string, kind)
        incoming = Incoming(b.decode_redirect(params.message), params.relay_state, params)
    else:
        value = request.form.get(kind)
        if not value:
            raise b.MessageError(f"{kind} absent")
        incoming = Incoming(b.decode_post(value), request.form.get("RelayState"), None)
    if incoming.relay_state is not None and len(incoming.relay_state) > MAX_RELAY_STATE:
        raise b.MessageError("RelayState trop long")
    return incoming


def _service_provider(session: Session, entity_id: str) -> SamlServiceProvider:
    sp = session.scalars(
        select(SamlServiceProvider).where(SamlServiceProvider.entity_id == entity_id)
    ).first()
    if sp is None:
        raise b.MessageError("émetteur inconnu : aucun partenaire SAML enregistré sous ce nom")
    return sp


def _certificates(sp: SamlServiceProvider) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in sp.certificates_pem]


def _verified(
    incoming: Incoming, root: etree._Element, sp: SamlServiceProvider, *, required: bool
) -> etree._Element:
    """The message as signed by the partner's registered keys (never a key it carries).

    A present signature is always checked; an absent one is refused when
    ``required``. For HTTP-POST only the signed copy is returned (stops wrapping).
    """
    certificates = _certificates(sp)
    signed = (
        incoming.redirect.signature is not None
        if incoming.redirect is not None
        else b.has_xml_signature(root)
    )
    if not signed:
        if required and not certificates:
            raise b.MessageSignatureError(
                "message non signé : une signature est exigée et ce partenaire n'a "
                "enregistré aucun certificat de signature"
            )
        if required:
            raise b.MessageSignatureError(
                "message non signé : ce partenaire doit signer ses messages"
            )
        return root
    if not certificates:
        raise b.MessageError("message signé mais aucun certificat enregistré pour ce partenaire")
    if incoming.redirect is not None:
        b.verify_redirect_signature(incoming.redirect, certificates)
        return root
    copy = b.verified_xml(root, certificates)
    if b.issuer_of(copy) != b.issuer_of(root):
        raise b.MessageError("Issuer modifié")
    return copy


def _has_certificates(sp: SamlServiceProvider) -> bool:
    return bool(sp.certificates_pem)


def _receive(
    kind: str,
    tags: list[str],
    *,
    required: Callable[[SamlServiceProvider], bool] = _has_certificates,
) -> tuple[Incoming, etree._Element, SamlServiceProvider]:
    """Parse, find the partner by Issuer, verify (a signature is ``required(sp)``:
    by default whenever the partner has registered certificates)."""
    incoming = _incoming(kind)
    root = b.parse_message(incoming.xml, tags)
    sp = _service_provider(db.session(), b.issuer_of(root))
    return incoming, _verified(incoming, root, sp, required=required(sp)), sp


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


@bp.route("/saml/sso", methods=["GET", "POST"])
def sso() -> Response:
    """Receive an AuthnRequest (HTTP-Redirect or HTTP-POST) and answer it."""
    now = _now()
    incoming, root, sp = _receive(
        "SAMLRequest", ["AuthnRequest"], required=lambda sp: sp.authn_requests_signed
    )
    authn = m.authn_request(root, destination=f"{_base()}/saml/sso", now=now)
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
    sp = _service_provider(db.session(), pending.sp)
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
    session = db.session()
    sp = _service_provider(session, pending.sp)
    partner = sp.partner
    declarant = session.get(Declarant, row.declarant_id)
    if declarant is None or declarant.status != DeclarantStatus.ACTIVE.value:
        return _status(pending, [m.RESPONDER, m.REQUEST_DENIED])
    vector = tokens.vector_for(
        session,
        declarant,
        registry.services_of(session, partner),
        acr=row.acr,
        auth_time=row.auth_time,
        session_index=row.sid,
        include_email="email" in (partner.claims or []),
    )
    issued = tokens.token_service().issue(
        session,
        vector,
        fmt="saml",
        audience=sp.entity_id,
        recipient=pending.acs,
        lifetime=timedelta(seconds=partner.token_lifetime_seconds),
        in_response_to=pending.request_id,
    )
    sessions.add_participant(
        session,
        row,
        {
            "partner": partner.name,
            "protocol": "saml",
            "name_id": declarant.id,
            "session_index": row.sid,
        },
    )
    session.commit()
    return _post_page(
        pending.acs,
        "SAMLResponse",
        b.encode_post(issued.token.encode("utf-8")),
        pending.relay_state,
    )


def _status(pending: Pending, codes: list[str]) -> Response:
    """A signed Response without assertion (NoPassive, AuthnFailed...) to the registered ACS."""
    document = m.status_response(
        issuer=_entity_id(),
        destination=pending.acs,
        in_response_to=pending.request_id,
        codes=codes,
        now=_now(),
        signer=_signer(),
    )
    return _post_page(pending.acs, "SAMLResponse", b.encode_post(document), pending.relay_state)


def _post_page(action: str, field: str, value: str, relay_state: str | None) -> Response:
    """The HTTP-POST binding: a form that submits itself, with a visible button
    (works without JavaScript)."""
    nonce = secrets.token_urlsafe(16)
    html = render_template(
        "saml_post.html",
        action=action,
        field=field,
        value=value,
        relay_state=relay_state,
        nonce=nonce,
    )
    response = no_store(make_response(html), frame_ancestors=NEVER_FRAMED)
    response.headers["Content-Security-Policy"] += f"; script-src 'nonce-{nonce}'"
    return response


# ----------------------------------------------------------------------- SLO


def _logout_request_id() -> str:
    """An ID whose LogoutResponse we can recognise without storing it (HMAC-tagged)."""
    nonce = secrets.token_hex(16)
    return f"_{nonce}{_tag(nonce)}"


def _tag(nonce: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode("utf-8")
    return hmac.new(key, f"saml-logout:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def _is_our_logout_request(message_id: str | None) -> bool:
    if not message_id or len(message_id) != 65 or not message_id.startswith("_"):
        return False
    return hmac.compare_digest(message_id[33:], _tag(message_id[1:33]))


def _slo_endpoint(
    sp: SamlServiceProvider, *, redirect_only: bool = False
) -> tuple[str, str] | None:
    """(binding, url) of the partner's SLO: HTTP-Redirect preferred, else HTTP-POST."""
    order = [b.BINDING_REDIRECT] if redirect_only else [b.BINDING_REDIRECT, b.BINDING_POST]
    for binding in order:
        for endpoint in sp.slo or []:
            if endpoint.get("binding") == binding and endpoint.get("url"):
                return binding, str(endpoint["url"])
    return None


def logout_url(participant: dict[str, Any], row: SsoRecord) -> str | None:
    """IdP-initiated logout: the partner's SLO URL carrying a signed LogoutRequest
    (HTTP-Redirect) for this participant, or None when it has no Redirect SLO."""
    session = db.session()
    try:
        sp = registry.get_partner(session, str(participant.get("partner", ""))).saml
    except NotFound:
        return None
    endpoint = None if sp is None else _slo_endpoint(sp, redirect_only=True)
    if endpoint is None:
        return None
    document = m.build_logout_request(
        message_id=_logout_request_id(),
        issuer=_entity_id(),
        destination=endpoint[1],
        name_id=str(participant.get("name_id") or row.declarant_id),
        session_index=str(participant.get("session_index") or row.sid),
        now=_now(),
    )
    return b.with_query(
        endpoint[1], b.signed_redirect_query("SAMLRequest", document, None, _signer())
    )


def init_app(app: Flask) -> None:
    """SAML POST bindings come from partner sites (their messages are signed: no CSRF
    form token); the logout page ends SAML partners' sessions with :func:`logout_url`."""
    csrf.exempt(app, bp.name)
    sessions.register_logout_builder(app, "saml", logout_url)


@bp.route("/saml/slo", methods=["GET", "POST"])
def slo() -> Response:
    """A partner's LogoutRequest (ends the session) or LogoutResponse (to ours)."""
    source = request.args if request.method == "GET" else request.form
    if "SAMLRequest" in source:
        return _partner_logout()
    if "SAMLResponse" in source:
        return _logout_answered()
    raise b.MessageError("SAMLRequest ou SAMLResponse attendu")


def _session_to_end(
    session: Session, logout: m.LogoutRequest, sp: SamlServiceProvider
) -> tuple[SsoRecord | None, bool]:
    """The session the request names, and whether it is this browser's (cookie)."""
    current = sessions.current_session()
    if (
        current is not None
        and current.declarant_id == logout.name_id
        and (not logout.session_indexes or current.sid in logout.session_indexes)
    ):
        return current, True
    for index in logout.session_indexes:  # e.g. a cross-site POST that carried no cookie
        row = sessions.by_sid(session, index)
        if (
            row is not None
            and row.declarant_id == logout.name_id
            and any(
                p.get("protocol") == "saml" and p.get("partner") == sp.partner.name
                for p in row.participants or []
            )
        ):
            return row, current is not None and current.id_hash == row.id_hash
    return None, False


def _other_logout_urls(row: SsoRecord, sp: SamlServiceProvider) -> list[str]:
    return sessions.logout_urls(
        row,
        skip=lambda p: p.get("protocol") == "saml" and p.get("partner") == sp.partner.name,
    )


def _always(_sp: SamlServiceProvider) -> bool:
    return True


def _partner_logout() -> Response:
    """A partner's LogoutRequest, which must be signed by one of its registered
    certificates: an unsigned one (even from a partner registered without any
    certificate) could end anyone's session cross-site, knowing only a NameID."""
    incoming, root, sp = _receive("SAMLRequest", ["LogoutRequest"], required=_always)
    relay_state = incoming.relay_state
    logout = m.logout_request(root, destination=f"{_base()}/saml/slo", now=_now())
    session = db.session()
    row, own = _session_to_end(session, logout, sp)
    others: list[str] = []
    if row is not None:
        others = _other_logout_urls(row, sp)
        audit.record(
            session,
            "session.logout",
            actor=row.declarant_id,
            target=sp.entity_id,
            data={"protocol": "saml", "initiator": "partner"},
        )
        sessions.end_session(session, row)
    session.commit()
    response = _answer_logout(sp, logout, relay_state, others)
    if own:
        sessions.clear_cookie(cast(FlaskResponse, response))
    return response


def _answer_logout(
    sp: SamlServiceProvider, logout: m.LogoutRequest, relay_state: str | None, others: list[str]
) -> Response:
    """The signed LogoutResponse at the partner's SLO address (after the other
    participants' logout pages, loaded in frames, when there are any)."""
    endpoint = _slo_endpoint(sp)
    if endpoint is None:
        page = make_response(render_template("saml_logout.html", others=others))
        return no_store(page, frame_ancestors=NEVER_FRAMED)
    binding, url = endpoint
    signer = _signer() if binding == b.BINDING_POST else None
    document = m.build_logout_response(
        issuer=_entity_id(),
        destination=url,
        in_response_to=logout.id,
        codes=[m.SUCCESS],
        now=_now(),
        signer=signer,
    )
    if binding == b.BINDING_POST:
        if not others:
            return _post_page(url, "SAMLResponse", b.encode_post(document), relay_state)
        post = {
            "action": url,
            "field": "SAMLResponse",
            "value": b.encode_post(document),
            "relay_state": relay_state,
        }
        return _logout_page(others, post=post)
    target = b.with_query(
        url, b.signed_redirect_query("SAMLResponse", document, relay_state, _signer())
    )
    if not others:
        return no_store(redirect(target), frame_ancestors=NEVER_FRAMED)
    return _logout_page(others, continue_url=target)


def _logout_page(others: list[str], **kwargs: Any) -> Response:
    nonce = secrets.token_urlsafe(16)
    response = no_store(
        make_response(render_template("saml_logout.html", others=others, nonce=nonce, **kwargs)),
        frame_ancestors=NEVER_FRAMED,
    )
    response.headers["Content-Security-Policy"] += f"; script-src 'nonce-{nonce}'"
    return response


def _logout_answered() -> Response:
    """A partner's LogoutResponse to a LogoutRequest we sent (IdP-initiated logout)."""
    _, root, _sp = _receive("SAMLResponse", ["LogoutResponse"])
    answer = m.logout_response(root, destination=f"{_base()}/saml/slo", now=_now())
    if not _is_our_logout_request(answer.in_response_to):
        raise b.MessageError("réponse à une demande de déconnexion que nous n'avons pas émise")
    html = render_template(
        "saml_logout.html", others=[], answered=True, success=answer.status == m.SUCCESS
    )
    # shown inside the logout page's frames: framing by our own pages only
    return no_store(make_response(html), frame_ancestors="'self'")
