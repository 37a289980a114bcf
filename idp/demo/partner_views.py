"""The demo partner's pages (:func:`idp.demo.partner.create_partner_app` registers them):
SAML SP (metadata, SP-initiated login, ACS, Single Logout), OpenID Connect RP (code +
PKCE S256, state, nonce) and logout; every token verified with ``token_suite`` only."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
)
from flask.typing import ResponseReturnValue

from idp.demo.partner_site import site_metadata
from keys.model import SigningKey
from token_suite import bindings, messages, saml
from token_suite import jwt as interops_jwt
from token_suite.errors import InteropsError
from token_suite.replay import InMemoryReplayCache

if TYPE_CHECKING:
    from idp.demo.partner_site import Arrivals, Operator, PartnerSite

bp = Blueprint("partner", __name__)


@dataclass
class PartnerState:
    """One partner app's site, key, view of the operator, arrivals and replay cache."""

    site: PartnerSite
    key: SigningKey
    operator: Operator
    arrivals: Arrivals
    replay: InMemoryReplayCache


def _state() -> PartnerState:
    state: PartnerState = current_app.extensions["demo_partner"]
    return state


def _arrival(protocol: str, vector: Any, sid: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "subject": vector.subject,
        "family_name": vector.family_name,
        "given_name": vector.given_name,
        "siret": vector.siret,
        "pagm": list(vector.pagm),
        "habilitations": [h.as_saml() for h in vector.habilitations],
        "acr": vector.acr,
        "sid": sid,
        "at": datetime.now(UTC).strftime("%H:%M:%S"),
        **extra,
    }


def local_id() -> str:
    if "local" not in session:
        session["local"] = secrets.token_urlsafe(16)
        session["csrf"] = secrets.token_urlsafe(16)
    return str(session["local"])


def page(template: str, status: int = 200, **context: Any) -> Response:
    local_id()
    html = render_template(template, site=_state().site, csrf=session["csrf"], **context)
    return Response(html, status=status, headers={"Cache-Control": "no-store"})


def refused(message: str, status: int = 401) -> Response:
    return page("message.html", status, title="Connexion refusée", message=message)


@bp.get("/")
def home() -> ResponseReturnValue:
    return page("home.html", arrivals=_state().arrivals.of(session.get("local")))


@bp.get("/saml/metadata")
def metadata() -> ResponseReturnValue:
    partner = _state()
    document = site_metadata(partner.site, partner.key)
    return Response(document, mimetype="application/samlmetadata+xml")


@bp.get("/saml/login")
def saml_login() -> ResponseReturnValue:
    """SP-initiated SSO: a signed AuthnRequest by HTTP-Redirect."""
    partner = _state()
    _, endpoints = partner.operator.saml()
    destination = endpoints["SingleSignOnService"]
    request_id = messages.new_id()
    xml = messages.build_authn_request(
        issuer=partner.site.entity_id,
        destination=destination,
        acs_url=partner.site.acs_url,
        now=datetime.now(UTC),
        message_id=request_id,
    )
    session["pending"] = [*session.get("pending", [])[-4:], request_id]
    return redirect(_signed(destination, "SAMLRequest", xml, partner.key))


def _signed(
    destination: str, kind: str, xml: bytes, key: SigningKey, relay_state: str | None = None
) -> str:
    """``destination`` with the message in a signed HTTP-Redirect query."""
    query = bindings.signed_redirect_query(kind, xml, relay_state, key)
    return bindings.with_query(destination, query)


@bp.post("/saml/acs")
def acs() -> ResponseReturnValue:
    """A jeton: verified with token_suite against the operator's metadata only."""
    partner = _state()
    trust, _ = partner.operator.saml()
    try:
        vector = saml.verify(
            request.form.get("SAMLResponse", ""),
            trust=trust,
            audience=partner.site.entity_id,
            replay=partner.replay,
        )
    except InteropsError as error:
        return refused(f"Jeton refusé : {error.code} ({error.reason})")
    answered = vector.claims["in_response_to"]
    if vector.claims["recipient"] != partner.site.acs_url or (
        answered is not None and answered not in session.get("pending", [])
    ):
        return refused("Jeton refusé : destinataire ou demande inattendus")
    origin = "connexion SAML" if answered else "navigation depuis le portail"
    partner.arrivals.add(
        local_id(), "saml", _arrival("saml", vector, vector.session_index, origin=origin)
    )
    return redirect("/")


@bp.get("/oidc/login")
def oidc_login() -> ResponseReturnValue:
    """Authorization code flow with PKCE (S256), state and nonce."""
    partner = _state()
    discovery, _ = partner.operator.oidc()
    verifier, state, nonce = (secrets.token_urlsafe(48) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    session["oidc"] = {"verifier": verifier, "state": state, "nonce": nonce}
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": partner.site.client_id,
            "redirect_uri": partner.site.callback_url,
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    return redirect(f"{discovery['authorization_endpoint']}?{query}")


@bp.get("/oidc/callback")
def oidc_callback() -> ResponseReturnValue:
    partner = _state()
    discovery, trust = partner.operator.oidc()
    pending = session.pop("oidc", None)
    if not pending or request.args.get("state") != pending["state"]:
        return refused("Réponse OpenID Connect inattendue (state)", 400)
    if request.args.get("iss", discovery["issuer"]) != discovery["issuer"]:
        return refused("Réponse OpenID Connect d'un autre émetteur (iss)", 400)
    if "error" in request.args:
        return refused(f"Connexion refusée par le service d'identité : {request.args['error']}")
    answer = json.loads(
        partner.operator.fetch(
            discovery["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": request.args.get("code", ""),
                "redirect_uri": partner.site.callback_url,
                "client_id": partner.site.client_id,
                "code_verifier": pending["verifier"],
            },
        )
    )
    try:
        vector = interops_jwt.verify(
            answer["id_token"],
            trust=trust,
            audience=partner.site.client_id,
            replay=partner.replay,
        )
    except InteropsError as error:
        return refused(f"id_token refusé : {error.code} ({error.reason})")
    if vector.claims.get("nonce") != pending["nonce"]:
        return refused("id_token refusé : nonce inattendu")
    partner.arrivals.add(
        local_id(),
        "oidc",
        _arrival(
            "oidc",
            vector,
            vector.claims.get("sid"),
            origin="connexion OpenID Connect",
            id_token=answer["id_token"],
        ),
    )
    return redirect("/")


@bp.post("/deconnexion")
def logout() -> ResponseReturnValue:
    """Local logout, then at the operator: RP-initiated (OIDC) or a LogoutRequest (SAML)."""
    partner = _state()
    if request.form.get("csrf") != session.get("csrf"):
        abort(400)
    ended = partner.arrivals.pop(session.get("local"))
    if "oidc" in ended:
        discovery, _ = partner.operator.oidc()
        query = urllib.parse.urlencode(
            {
                "id_token_hint": ended["oidc"]["id_token"],
                "post_logout_redirect_uri": partner.site.logged_out_url,
            }
        )
        return redirect(f"{discovery['end_session_endpoint']}?{query}")
    if "saml" in ended:
        _, endpoints = partner.operator.saml()
        destination = endpoints["SingleLogoutService"]
        arrival = ended["saml"]
        xml = messages.build_logout_request(
            message_id=messages.new_id(),
            issuer=partner.site.entity_id,
            destination=destination,
            name_id=arrival["subject"],
            session_index=arrival["sid"],
            now=datetime.now(UTC),
        )
        return redirect(_signed(destination, "SAMLRequest", xml, partner.key))
    return redirect(partner.site.logged_out_url)


@bp.get("/deconnecte")
def logged_out() -> ResponseReturnValue:
    return page("message.html", title="Déconnexion", message="Vous êtes déconnecté.")


@bp.get("/saml/slo")
def slo() -> ResponseReturnValue:
    """The operator's LogoutRequest (ends the arrivals of that session, answers a
    signed LogoutResponse) or its LogoutResponse to ours."""
    partner = _state()
    trust, endpoints = partner.operator.saml()
    kind = "SAMLRequest" if "SAMLRequest" in request.args else "SAMLResponse"
    now = datetime.now(UTC)
    try:
        root = bindings.receive_redirect(request.query_string, kind, trust=trust)
        if kind == "SAMLResponse":
            messages.logout_response(root, destination=partner.site.slo_url, now=now)
            return redirect(partner.site.logged_out_url)
        logout = messages.logout_request(root, destination=partner.site.slo_url, now=now)
    except InteropsError as error:
        return refused(f"Message de déconnexion refusé : {error.reason}", 400)
    partner.arrivals.end(logout.name_id, list(logout.session_indexes))
    destination = endpoints["SingleLogoutService"]
    answer = messages.build_logout_response(
        issuer=partner.site.entity_id,
        destination=destination,
        in_response_to=logout.id,
        codes=[messages.SUCCESS],
        now=now,
    )
    relay_state = request.args.get("RelayState")
    return redirect(_signed(destination, "SAMLResponse", answer, partner.key, relay_state))
