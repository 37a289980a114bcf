"""The OpenID Connect provider: discovery, authorization, token, userinfo, end session.

Built on Authlib's Flask ``AuthorizationServer`` (:mod:`idp.oidc.server`). What each
rule stops:
- redirect URIs compared exactly, and an unknown client or unregistered
  ``redirect_uri`` gets an error page, never a redirect (open redirect, code theft);
- PKCE S256 required of public clients, ``plain`` refused (code interception);
- codes hashed, 60 s, single use; a replayed code revokes what it issued (stolen code);
- ``iss`` in every authorization response (RFC 9207: mix-up attacks);
- consent and logout confirmation are POST forms with their CSRF token; the consent
  page cannot be framed (clickjacking);
- ``post_logout_redirect_uri`` followed only when registered for the client named by a
  verified ``id_token_hint`` or ``client_id`` (open redirect);
- ``prompt=create``: registration first, then a code for the NEW account only
  (:mod:`idp.oidc.registration`).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.util import scope_to_list
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.auth.login import authenticated_declarant, login_required
from idp.i18n import N_, _
from idp.oidc import endpoints as oauth_endpoints
from idp.oidc import exchange as oauth_exchange
from idp.oidc import grants as oauth_grants
from idp.oidc import intake as oauth_intake
from idp.oidc import registration
from idp.oidc import server as oauth_server
from idp.oidc.clients import AUTH_METHODS, SIGNING_ALGS, default_audience, issuer
from idp.oidc.server import SCOPES, ResourceOwner, error_redirect, owner_vector, server
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.stores.models import Consent
from idp.tokens.issuing import ID_TOKEN_TYP
from idp.tokens.own import live_access_token, unverified_part, verify_own_token
from idp.web import csrf, documents
from idp.web.answers import no_store
from idp.web.credentials import presented
from partners.models import Partner
from partners.services import client_by_id
from rcd_store import audit
from token_suite.errors import InteropsError, InvalidSecurityToken, InvalidService
from token_suite.vector import ACR_LEVELS, IdentityVector

bp = Blueprint("oauth", __name__, template_folder="templates")
AUTHLIB_ENDPOINTS = frozenset(
    {"oauth.authorize", "oauth.token", "oauth.introspect", "oauth.revoke"}
)

#: how long a "log in again" request may take before the login must start over
LOGIN_MARKER_AGE = 600
SCOPE_LABELS = {
    "openid": N_("Vous identifier (identifiant de déclarant)"),
    "profile": N_("Connaître vos nom et prénom"),
    "email": N_("Connaître votre adresse électronique"),
    "rcd.admin": N_("Administrer en votre nom les entreprises que vous administrez"),
    "rcd.read": N_("Lire l'annuaire des déclarants pour ses services"),
}


@bp.before_request
def _intake() -> BaseResponse | tuple[str, int] | None:
    """Authlib's endpoints refuse, as ``invalid_request``, what Authlib would turn into a
    500 (:mod:`idp.oidc.intake`): a page at the authorization endpoint, JSON elsewhere."""
    if request.endpoint not in AUTHLIB_ENDPOINTS:
        return None
    error = oauth_intake.refusal()
    if error is None:
        return None
    if request.endpoint == "oauth.authorize":
        return _error_page(error)
    return server().handle_error_response(None, error)  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    """The OpenID provider of ``app``: its Authlib server with every grant and endpoint,
    the JSON endpoints authenticated otherwise than by a form (no CSRF form token), and
    front-channel logout for OIDC clients."""
    server = oauth_grants.register(oauth_server.init_app(app))
    oauth_endpoints.register(oauth_exchange.register(server))
    csrf.exempt(app, "oauth.token", "oauth.userinfo", "oauth.introspect", "oauth.revoke")
    documents.publish(app, "/.well-known/openid-configuration", "application/json", discovery_bytes)
    sessions.register_logout_builder(app, "oidc", frontchannel_logout_url)
    registration.init_app(app)


def frontchannel_logout_url(participant: dict[str, Any], row: SsoRecord) -> str | None:
    """OpenID Connect Front-Channel Logout 1.0: the client's registered URI with ``iss``
    and ``sid``, loaded by the logout page; None when the client registered none."""
    found = client_by_id(db.session(), str(participant.get("client_id") or ""))
    if found is None or not found.frontchannel_logout_uri:
        return None
    separator = "&" if "?" in found.frontchannel_logout_uri else "?"
    query = urlencode({"iss": issuer(), "sid": row.sid})
    return f"{found.frontchannel_logout_uri}{separator}{query}"


# --------------------------------------------------------------------- discovery


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """The OpenID Provider metadata (served from prepared bytes by :mod:`idp.web.documents`;
    this route answers ``url_for`` and a request with a query string)."""
    return Response(discovery_bytes(), mimetype="application/json")


def discovery_bytes() -> bytes:
    """The OpenID Provider metadata; ``issuer`` is exactly ``IDP_BASE_URL``."""
    base = issuer()
    document = {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        # not an OpenID field: where partners' Trust.from_issuer finds our SAML keys
        "saml_metadata_uri": f"{base}/saml/metadata",
        "end_session_endpoint": f"{base}/oauth/logout",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint_auth_methods_supported": oauth_endpoints.ENDPOINT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": oauth_endpoints.ENDPOINT_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": sorted(_grant_types()),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "userinfo_signing_alg_values_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "scopes_supported": list(SCOPES),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "sid",
            "given_name",
            "family_name",
            "email",
            "siret",
            "pagm",
            "habilitations",
        ],
        "acr_values_supported": list(ACR_LEVELS),
        "prompt_values_supported": ["none", "login", "consent", "create"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "ui_locales_supported": ["fr", "en"],
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _grant_types() -> set[str]:
    return {grant.GRANT_TYPE for grant, _ext in server()._token_grants}


# ----------------------------------------------------------------- authorization


def _current_owner() -> tuple[SsoRecord, ResourceOwner] | None:
    who = authenticated_declarant()
    return None if who is None else (who[0], ResourceOwner.from_session(who[0]))


def _marker_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="idp.oidc.views.login")


def _login_redirect(*, force: bool) -> BaseResponse:
    """To the login page, back to this authorization request; a forced login carries a
    signed time marker, so that the request is satisfied by a login made after it."""
    args = request.args.to_dict(flat=False)
    if force:
        args["login_after"] = [_marker_serializer().dumps(int(time.time()))]
    return login_required("/oauth/authorize?" + urlencode(args, doseq=True), force=force)


def _logged_in_after_request(owner: ResourceOwner) -> bool:
    marker = request.args.get("login_after")
    if not marker:
        return False
    try:
        asked = int(_marker_serializer().loads(marker, max_age=LOGIN_MARKER_AGE))
    except (BadSignature, ValueError, TypeError):
        return False
    return owner.auth_time.timestamp() >= asked


def _needs_login(owner: ResourceOwner, prompts: set[str]) -> bool:
    """``prompt=login``, or ``max_age`` older than the session's authentication."""
    if _logged_in_after_request(owner):
        return False
    if "login" in prompts:
        return True
    max_age = request.args.get("max_age", "")
    if not max_age.isdigit():
        return False
    limit = int(max_age)
    return limit == 0 or time.time() - owner.auth_time.timestamp() > limit


def _error_page(error: OAuth2Error) -> tuple[str, int]:
    return render_template(
        "error.html",
        title=_("Demande d'autorisation invalide"),
        message=error.description or error.error,
    ), 400


def _redirect_error(grant: Any, name: str) -> Response:
    error = OAuth2Error(state=grant.request.payload.state, redirect_uri=grant.redirect_uri)
    error.error = name
    return server().handle_response(*error_redirect(error))  # type: ignore[no-any-return]


def _consented(declarant_id: str, client_id: str, scopes: list[str]) -> Consent | None:
    row = (
        db.session()
        .scalars(
            select(Consent).where(
                Consent.declarant_id == declarant_id, Consent.client_id == client_id
            )
        )
        .first()
    )
    return row if row is not None and set(scopes) <= set(row.scopes or []) else None


def _remember_consent(declarant_id: str, client_id: str, scopes: list[str]) -> None:
    session = db.session()
    row = session.scalars(
        select(Consent).where(Consent.declarant_id == declarant_id, Consent.client_id == client_id)
    ).first()
    if row is None:
        row = Consent(declarant_id=declarant_id, client_id=client_id, scopes=[])
        session.add(row)
    row.scopes = sorted(set(row.scopes or []) | set(scopes))
    row.granted_at = datetime.now(UTC)
    audit.record(
        session,
        "consent.granted",
        actor=declarant_id,
        target=client_id,
        data={"scopes": row.scopes},
    )


def _issue_code(grant: Any, sso: SsoRecord, owner: ResourceOwner) -> Response:
    response = server().create_authorization_response(grant=grant, grant_user=owner)
    if response.status_code == 302 and "code=" in response.headers.get("Location", ""):
        client = grant.client.row
        sessions.add_participant(
            db.session(),
            sso,
            {"partner": client.partner.name, "protocol": "oidc", "client_id": client.client_id},
        )
    db.session().commit()
    return response  # type: ignore[no-any-return]


def _consent_page(grant: Any, scopes: list[str]) -> Response:
    labels = [_(SCOPE_LABELS[s]) for s in scopes if s in SCOPE_LABELS]
    html = render_template(
        "consent.html",
        partner=grant.client.row.partner.name,
        labels=labels,
        action=request.full_path,
    )
    return no_store(Response(html, mimetype="text/html"))  # never framed: security_headers


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse | tuple[str, int]:
    """The code flow: login (or ``prompt=none``), consent once per client and scope, code."""
    current = _current_owner()
    owner = current[1] if current else None
    try:
        grant = server().get_consent_grant(end_user=owner)
    except OAuth2Error as error:
        if error.redirect_uri:
            return server().handle_response(*error_redirect(error))  # type: ignore[no-any-return]
        return _error_page(error)
    prompts = set((request.args.get("prompt") or "").split())
    registering = registration.intercept(grant, prompts, owner)
    if registering is not None:
        return registering
    if current is None or _needs_login(current[1], prompts):
        if "none" in prompts:
            return _redirect_error(grant, "login_required")
        return _login_redirect(force=current is not None or "login" in prompts)
    sso, owner = current
    client_id, scopes = grant.client.get_client_id(), scope_to_list(grant.request.scope) or []
    if request.method == "POST":
        if request.form.get("decision") != "autoriser":
            return _redirect_error(grant, "access_denied")
        _remember_consent(owner.declarant_id, client_id, scopes)
        return _issue_code(grant, sso, owner)
    if "consent" not in prompts and _consented(owner.declarant_id, client_id, scopes):
        return _issue_code(grant, sso, owner)
    if "none" in prompts:
        return _redirect_error(grant, "consent_required")
    return _consent_page(grant, scopes)


# ------------------------------------------------------------------------- token


@bp.post("/oauth/token")
def token() -> Response:
    """RFC 6749 token endpoint (JSON errors); the work, or a replayed code's revocation,
    is committed either way. Each client is rate-limited (:mod:`idp.oidc.limits`)."""
    response = server().create_token_response()
    db.session().commit()
    no_store(response, pragma=True)
    return response  # type: ignore[no-any-return]


@bp.post("/oauth/introspect")
def introspect() -> Response:
    """RFC 7662 token introspection (client-authenticated)."""
    return oauth_endpoints.endpoint_response("introspection")


@bp.post("/oauth/revoke")
def revoke() -> Response:
    """RFC 7009 token revocation (client-authenticated)."""
    return oauth_endpoints.endpoint_response("revocation")


# ---------------------------------------------------------------------- userinfo


def _bearer_error(error: str, description: str, status: int = 401) -> Response:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return response


def _bearer() -> str | None:
    return presented(request.headers.get("Authorization"), "Bearer")


def _login_token(vector: IdentityVector, partner: Partner) -> bool:
    """An access token from the client's own login (code or refresh): aimed at the
    client's default audience, with no ``act`` (not exchanged)."""
    return vector.claims.get("aud") == default_audience(partner) and "act" not in vector.claims


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """Claims of the token's declarant, minimised to the client's partner; refuses a token
    not issued here, revoked, expired or forged, and any access token but the client's
    own login token: aimed at the client's default audience, not exchanged (an exchanged
    token is for another API, whose holder must not read the first client's view)."""
    presented = _bearer()
    if presented is None:
        response = jsonify(error="invalid_request", error_description="Jeton d'accès absent.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    session = db.session()
    try:
        vector, row = live_access_token(session, presented)
    except InteropsError as exc:
        return _bearer_error("invalid_token", exc.reason)
    scope = str(vector.claims.get("scope", ""))
    client = client_by_id(session, row.client_id)
    if client is None or not _login_token(vector, client.partner):
        return _bearer_error("invalid_token", "Jeton destine a une autre API.")
    if "openid" not in scope.split() or vector.auth_time is None:
        return _bearer_error("insufficient_scope", "Portée openid requise.", 403)
    owner = ResourceOwner(vector.subject, vector.auth_time, vector.acr)
    fresh = owner_vector(session, owner, client.partner, scope)
    claims: dict[str, Any] = {"sub": fresh.subject}
    for name, value in (
        ("given_name", fresh.given_name),
        ("family_name", fresh.family_name),
        ("email", fresh.email),
        ("siret", fresh.siret),
    ):
        if value is not None:
            claims[name] = value
    claims["pagm"] = list(fresh.pagm)
    claims["habilitations"] = [h.as_claim() for h in fresh.habilitations]
    return no_store(jsonify(claims))


# ------------------------------------------------------------------------ logout


def verify_id_token_hint(token: str) -> dict[str, Any]:
    """Our own ID token (no ``typ``: never a partner's Interops-R token or an access token),
    for a registered client, by our signature and issuer, accepted even when expired (OIDC
    RP-Initiated Logout); raises :class:`InteropsError` otherwise."""
    peek = unverified_part(token, 1)
    audience, issued_at = peek.get("aud"), peek.get("iat")
    if not isinstance(audience, str) or not isinstance(issued_at, int):
        raise InvalidSecurityToken("id_token_hint malformed")
    if client_by_id(db.session(), audience) is None:
        raise InvalidService("id_token_hint for no registered client")
    vector = verify_own_token(
        token, audience=audience, typ=ID_TOKEN_TYP, now=datetime.fromtimestamp(issued_at, UTC)
    )
    return vector.claims


def _post_logout_target(client_id: str | None) -> str | None:
    uri = request.values.get("post_logout_redirect_uri")
    client = client_by_id(db.session(), client_id) if client_id else None
    if not uri or client is None or uri not in (client.redirect_uris or []):
        return None
    state = request.values.get("state")
    return add_params_to_uri(uri, [("state", state)]) if state else uri


def _logout_error(message: str) -> tuple[str, int]:
    return render_template(
        "error.html", title=_("Demande de déconnexion invalide"), message=message
    ), 400


@bp.route("/oauth/logout", methods=["GET", "POST"])
def logout() -> BaseResponse | str | tuple[str, int]:
    """RP-initiated logout: a verified ``id_token_hint`` for this session's declarant logs
    out at once; otherwise the user confirms (POST + CSRF: a link cannot log anyone out).
    Other partners are told by front-channel; then back to a registered URI, if any."""
    hint, claims = request.values.get("id_token_hint"), None
    if hint:
        try:
            claims = verify_id_token_hint(hint)
        except InteropsError:
            return _logout_error(_("Demande de déconnexion invalide"))
    client_id = request.values.get("client_id")
    if claims is not None:
        if client_id and client_id != claims["aud"]:
            return _logout_error(_("Demande de déconnexion invalide"))
        client_id = str(claims["aud"])
    target = _post_logout_target(client_id)
    sso = sessions.current_session()
    confirmed = request.method == "POST" or (
        sso is not None and claims is not None and claims.get("sub") == sso.declarant_id
    )
    if sso is not None and not confirmed:
        return render_template(
            "oauth_logout.html",
            confirm=True,
            urls=[],
            target=None,
            fields={
                k: v
                for k, v in request.args.items()
                if k in ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")
            },
        )
    urls = _end_session(sso) if sso is not None else []
    response: BaseResponse
    if target and not urls:
        response = redirect(target, code=303 if request.method == "POST" else 302)
    else:
        response = Response(
            render_template(
                "oauth_logout.html", confirm=False, urls=urls, target=target, fields={}
            ),
            mimetype="text/html",
        )
    sessions.clear_cookie(response)  # type: ignore[arg-type]
    return response


def _end_session(row: SsoRecord) -> list[str]:
    session = db.session()
    urls = sessions.logout_urls(row)
    declarant_id = row.declarant_id
    sessions.end_session(session, row)
    audit.record(session, "logout", actor=declarant_id, data={"partners": len(urls), "via": "oidc"})
    session.commit()
    return urls
