"""A world for the application-to-application tests: three partners with service
agreements, their clients, keys, and helpers to obtain and read tokens.

- URSSAF receives DSN and PASRAU (API ``https://api.urssaf.example``); clients
  ``urssaf-app`` (secret, code + refresh + client credentials + exchange) and
  ``urssaf-batch`` (private_key_jwt ES256, client credentials + JWT bearer + exchange).
- CNAV receives DSN and DUCS (API ``https://api.cnav.example``); client ``cnav-app``
  (secret, client credentials + exchange) and ``cnav-batch`` (private_key_jwt).
- AGIRC receives RETRAITE only (API ``https://api.agirc.example``): no agreement with URSSAF.
- The declarant holds DSN, PASRAU, DUCS and RETRAITE on SIRET_A.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from partners.models import OAuthClient
from partners.services import ClientSettings, PartnerSettings, add_partner
from rcd_store.services import grant_habilitation
from tests import factories
from tests.idp.oauth_support import REDIRECT, basic, get_code, log_in

ISSUER = "http://idp.test"
URSSAF_API = "https://api.urssaf.example"
CNAV_API = "https://api.cnav.example"
AGIRC_API = "https://api.agirc.example"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class A2A:
    declarant_id: str
    secrets: dict[str, str]
    keys: dict[str, ECKey]


def _key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"})


def _machine_client(partner: Any, client_id: str, key: ECKey, grants: list[str]) -> OAuthClient:
    return OAuthClient(
        partner=partner,
        client_id=client_id,
        token_endpoint_auth_method="private_key_jwt",
        redirect_uris=[],
        grant_types=grants,
        scopes=["openid", "profile", "email"],
        origins=[],
        jwks={"keys": [key.as_dict(private=False)]},
    )


def setup_a2a(app: Any, session: Any) -> A2A:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    factories.company(session)
    for code, host in (
        ("DSN", "URSSAF"),
        ("PASRAU", "URSSAF"),
        ("DUCS", "CNAV"),
        ("RETRAITE", "AGIRC"),
    ):
        factories.service(session, code, partner=host)
    declarant = factories.declarant(session)
    for code in ("DSN", "PASRAU", "DUCS", "RETRAITE"):
        grant_habilitation(
            session, declarant_id=declarant.id, siret=factories.SIRET_A, service_code=code
        )
    secrets: dict[str, str] = {}
    urssaf = add_partner(
        session,
        PartnerSettings(
            name="URSSAF",
            services=["DSN", "PASRAU"],
            api_audience=URSSAF_API,
            client=ClientSettings(
                client_id="urssaf-app",
                redirect_uris=(REDIRECT,),
                scopes=("openid", "profile", "email"),
                grants=("authorization_code", "refresh_token", "client_credentials", EXCHANGE),
            ),
        ),
    )
    secrets["urssaf-app"] = urssaf.client_secret or ""
    cnav = add_partner(
        session,
        PartnerSettings(
            name="CNAV",
            services=["DSN", "DUCS"],
            api_audience=CNAV_API,
            client=ClientSettings(
                client_id="cnav-app",
                scopes=("openid", "profile"),
                grants=("client_credentials", EXCHANGE),
            ),
        ),
    )
    secrets["cnav-app"] = cnav.client_secret or ""
    add_partner(
        session, PartnerSettings(name="AGIRC", services=["RETRAITE"], api_audience=AGIRC_API)
    )
    keys = {"urssaf-batch": _key("urssaf-1"), "cnav-batch": _key("cnav-1")}
    session.add(
        _machine_client(
            urssaf.partner,
            "urssaf-batch",
            keys["urssaf-batch"],
            ["client_credentials", JWT_BEARER, EXCHANGE],
        )
    )
    session.add(
        _machine_client(cnav.partner, "cnav-batch", keys["cnav-batch"], ["client_credentials"])
    )
    session.commit()
    return A2A(declarant.id, secrets, keys)


def client_assertion(
    key: ECKey,
    client_id: str,
    *,
    jti: str,
    aud: str = f"{ISSUER}/oauth/token",
    lifetime: int = 120,
    sub: str | None = None,
) -> str:
    now = int(time.time())
    return jwt.encode(
        {"alg": "ES256", "kid": key.kid},
        {
            "iss": client_id,
            "sub": sub or client_id,
            "aud": aud,
            "jti": jti,
            "iat": now,
            "exp": now + lifetime,
        },
        key,
    )


def token_request(
    client: Any, world: A2A, client_id: str, data: dict[str, Any], *, jti: str | None = None
) -> Any:
    """POST /oauth/token authenticated as ``client_id`` (its secret, or an assertion)."""
    if client_id in world.secrets:
        return client.post(
            "/oauth/token", data=data, headers=basic(client_id, world.secrets[client_id])
        )
    signed = client_assertion(world.keys[client_id], client_id, jti=jti or _fresh_jti())
    body = {**data, "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": signed}
    return client.post("/oauth/token", data=body)


_counter = iter(range(10**9))


def _fresh_jti() -> str:
    return f"jti-{time.time_ns()}-{next(_counter)}"


def claims_of(token: str) -> dict[str, Any]:
    """The payload, unverified (the signature is checked elsewhere with :func:`verify`)."""
    segment = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


def verify(client: Any, token: str, audience: str) -> Any:
    from token_suite import jwt as interops_jwt
    from token_suite.jwt import trust_from_jwks

    return interops_jwt.verify(
        token,
        trust=trust_from_jwks(client.get("/.well-known/jwks.json").json),
        audience=audience,
        issuer=ISSUER,
        typ="at+jwt",
        replay=interops_jwt.InMemoryReplayCache(),
    )


def code_flow_tokens(app: Any, world: A2A, *, scope: str = "openid profile") -> dict[str, Any]:
    """The declarant logs in and ``urssaf-app`` redeems a code: its token response."""
    from tests.idp.oauth_support import auth_params

    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    code = get_code(browser, auth_params("urssaf-app", scope=scope))
    response = token_request(
        app.test_client(),
        world,
        "urssaf-app",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
    )
    assert response.status_code == 200, response.json
    return dict(response.json)
