"""Helpers for the OpenID Connect tests: a partner with its client, a logged-in browser,
PKCE pairs, and authorization requests through the Flask test client."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from partners.services import ClientSettings, PartnerSettings, add_partner, hash_secret
from rcd_store.services import grant_habilitation
from tests import factories
from token_suite.vector import ACR_PASSWORD

REDIRECT = "https://rp.example/callback"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class World:
    declarant_id: str
    client_id: str
    secret: str | None


def setup_world(
    app: Any,
    session: Any,
    *,
    client_id: str = "rp-client",
    token_auth: str = "client_secret_basic",
    redirect_uris: tuple[str, ...] = (REDIRECT,),
    scopes: tuple[str, ...] = ("openid", "profile", "email"),
    jwks: dict[str, Any] | None = None,
    claims: tuple[str, ...] = (),
    secret: str | None = None,
    api_audience: str | None = None,
    extra_grants: tuple[str, ...] = (),
) -> World:
    """A declarant habilitated on DSN, a partner receiving DSN with one OAuth client;
    the signing keys. ``secret`` replaces the generated client secret."""
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    factories.company(session)
    factories.service(session, "DSN", partner="URSSAF")
    factories.service(session, "DUCS", partner="AUTRE")
    declarant = factories.declarant(session)
    grant_habilitation(
        session, declarant_id=declarant.id, siret=factories.SIRET_A, service_code="DSN"
    )
    grant_habilitation(
        session, declarant_id=declarant.id, siret=factories.SIRET_A, service_code="DUCS"
    )
    registered = add_partner(
        session,
        PartnerSettings(
            name="URSSAF",
            services=["DSN"],
            claims=claims,
            api_audience=api_audience,
            client=ClientSettings(
                client_id=client_id,
                token_auth=token_auth,
                redirect_uris=redirect_uris,
                scopes=scopes,
                jwks=jwks,
                grants=("authorization_code", *extra_grants),
            ),
        ),
    )
    generated = registered.client_secret
    if secret is not None:
        registered.partner.clients[0].client_secret_hash = hash_secret(secret)
        generated = secret
    session.commit()
    return World(declarant.id, client_id, generated)


def log_in(app: Any, client: Any, declarant_id: str, *, acr: str = ACR_PASSWORD) -> Any:
    """Open an SSO session directly (as the login page would); the client gets the cookie."""
    from idp.sessions import sso as sessions
    from idp.stores import db

    with app.test_request_context():
        opened = sessions.open_session(db.session(), declarant_id, acr=acr, amr=["pwd"])
        db.session().commit()
        row = opened.row
    client.set_cookie(sessions.COOKIE, opened.cookie)
    return row


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def auth_params(
    client_id: str = "rp-client", *, challenge: str | None = None, **extra: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "etat-1",
        "nonce": "nonce-1",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return params


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def hidden_fields(html: str) -> dict[str, str]:
    return {name: value.replace("&amp;", "&") for name, value in _HIDDEN.findall(html)}


def consent(client: Any, params: dict[str, str], decision: str = "autoriser") -> Any:
    """Show the consent page, then press « Autoriser » (or « Refuser »)."""
    page = client.get("/oauth/authorize", query_string=params)
    assert page.status_code == 200, page.text
    assert "Autoriser" in page.text and "Refuser" in page.text
    token = hidden_fields(page.text)["csrf_token"]
    return client.post(
        "/oauth/authorize", query_string=params, data={"csrf_token": token, "decision": decision}
    )


def get_code(client: Any, params: dict[str, str]) -> str:
    """Authorize (consenting if asked) and return the code from the redirect."""
    response = client.get("/oauth/authorize", query_string=params)
    if response.status_code == 200:
        response = consent(client, params)
    assert response.status_code in (302, 303), response.text
    query = query_of(response.headers["Location"])
    assert "code" in query, query
    return query["code"]


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 2.3.1: form-urlencode id and secret, then base64."""
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
