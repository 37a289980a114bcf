"""SAML 2.0 Single Logout: ``/saml/slo``.

A partner's LogoutRequest, which must be signed, ends the browser's SSO session and is
answered by a signed LogoutResponse at that partner's SLO address; the logout page
uses :func:`logout_url` (registered for the app by :func:`init_app`) to send each SAML
participant a signed LogoutRequest, whose LogoutResponse comes back here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, cast

from flask import Blueprint, Flask, current_app, make_response, redirect, render_template, request
from flask import Response as FlaskResponse
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp.saml import receiving as r
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.web import csrf
from idp.web.answers import no_store
from partners import services as registry
from partners.models import SamlServiceProvider
from rcd_store import audit
from rcd_store.errors import NotFound
from token_suite import bindings as b
from token_suite import messages as m

bp = Blueprint("slo_saml", __name__)
bp.register_error_handler(b.MessageError, r.refused)


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
        issuer=r.entity_id(),
        destination=endpoint[1],
        name_id=str(participant.get("name_id") or row.declarant_id),
        session_index=str(participant.get("session_index") or row.sid),
        now=r.now(),
    )
    return b.with_query(
        endpoint[1], b.signed_redirect_query("SAMLRequest", document, None, r.signer())
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
    incoming, root, sp = r.receive("SAMLRequest", ["LogoutRequest"], required=_always)
    relay_state = incoming.relay_state
    logout = m.logout_request(root, destination=f"{r.base()}/saml/slo", now=r.now())
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
        return no_store(page, frame_ancestors=r.NEVER_FRAMED)
    binding, url = endpoint
    signer = r.signer() if binding == b.BINDING_POST else None
    document = m.build_logout_response(
        issuer=r.entity_id(),
        destination=url,
        in_response_to=logout.id,
        codes=[m.SUCCESS],
        now=r.now(),
        signer=signer,
    )
    if binding == b.BINDING_POST:
        if not others:
            return r.post_page(url, "SAMLResponse", b.encode_post(document), relay_state)
        post = {
            "action": url,
            "field": "SAMLResponse",
            "value": b.encode_post(document),
            "relay_state": relay_state,
        }
        return _logout_page(others, post=post)
    target = b.with_query(
        url, b.signed_redirect_query("SAMLResponse", document, relay_state, r.signer())
    )
    if not others:
        return no_store(redirect(target), frame_ancestors=r.NEVER_FRAMED)
    return _logout_page(others, continue_url=target)


def _logout_page(others: list[str], **kwargs: Any) -> Response:
    nonce = secrets.token_urlsafe(16)
    response = no_store(
        make_response(render_template("saml_logout.html", others=others, nonce=nonce, **kwargs)),
        frame_ancestors=r.NEVER_FRAMED,
    )
    response.headers["Content-Security-Policy"] += f"; script-src 'nonce-{nonce}'"
    return response


def _logout_answered() -> Response:
    """A partner's LogoutResponse to a LogoutRequest we sent (IdP-initiated logout)."""
    _, root, _sp = r.receive("SAMLResponse", ["LogoutResponse"])
    answer = m.logout_response(root, destination=f"{r.base()}/saml/slo", now=r.now())
    if not _is_our_logout_request(answer.in_response_to):
        raise b.MessageError("réponse à une demande de déconnexion que nous n'avons pas émise")
    html = render_template(
        "saml_logout.html", others=[], answered=True, success=answer.status == m.SUCCESS
    )
    # shown inside the logout page's frames: framing by our own pages only
    return no_store(make_response(html), frame_ancestors="'self'")
