"""Interoperability, application to application: Authlib's OAuth 2 client, configured
only from our discovery document, obtains machine tokens with ``client_credentials``
under ``client_secret_basic`` and under ``private_key_jwt`` (ES256) from a live server;
jwcrypto (another JOSE library) verifies them from the published JWKS; the same client
introspects and revokes through the endpoints discovery names."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from jwcrypto import jwk
from jwcrypto import jwt as jc_jwt
from jwcrypto.common import JWException
from werkzeug.serving import make_server

from tests.idp.oauth_a2a_support import A2A, CNAV_API, URSSAF_API, setup_a2a


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    """The app on a free port; the issuer is that URL exactly."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join()


@pytest.fixture
def world(app: Any, session: Any, live: str) -> A2A:
    return setup_a2a(app, session)


class ShortPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib's ``private_key_jwt``, signing assertions valid 5 minutes: Authlib's default
    is one hour, and the server accepts 10 minutes at most (the replay cache keeps each
    ``jti`` until the assertion expires)."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                header=self.headers,
                expires_in=300,
            )
        )


def discover(base: str) -> dict[str, Any]:
    doc = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
    assert doc["issuer"] == base
    return dict(doc)


def verify_with_jwcrypto(token: str, discovery: dict[str, Any], audience: str) -> dict[str, Any]:
    """Signature from the JWKS, ``typ`` at+jwt (RFC 9068), iss, aud, exp: by jwcrypto."""
    keys = jwk.JWKSet.from_json(requests.get(discovery["jwks_uri"], timeout=5).text)
    checked = jc_jwt.JWT(
        jwt=token,
        key=keys,
        algs=discovery["id_token_signing_alg_values_supported"],
        check_claims={"iss": discovery["issuer"], "aud": audience, "exp": None},
        expected_type="JWS",
    )
    header = json.loads(checked.header)
    assert header["typ"].lower() in ("at+jwt", "application/at+jwt")
    return dict(json.loads(checked.claims))


def test_client_secret_basic_from_discovery(world: A2A, live: str) -> None:
    discovery = discover(live)
    assert "client_credentials" in discovery["grant_types_supported"]
    assert "client_secret_basic" in discovery["token_endpoint_auth_methods_supported"]
    client = OAuth2Session(
        "urssaf-app",
        world.secrets["urssaf-app"],
        token_endpoint_auth_method="client_secret_basic",
    )
    token = client.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and 0 < token["expires_in"] <= 900
    claims = verify_with_jwcrypto(token["access_token"], discovery, URSSAF_API)
    assert claims["sub"] == "urssaf-app" and claims["client_id"] == "urssaf-app"
    assert claims["pagm"] == ["DSN_DECL", "PASRAU_DECL"] and "habilitations" not in claims
    assert claims["exp"] - claims["iat"] <= 900

    # RFC 8707: a resource under a service agreement picks the audience
    aimed = client.fetch_token(
        discovery["token_endpoint"], grant_type="client_credentials", resource=CNAV_API
    )
    assert verify_with_jwcrypto(aimed["access_token"], discovery, CNAV_API)["pagm"] == ["DSN_DECL"]

    # introspection and revocation, at the endpoints discovery names
    info = client.introspect_token(discovery["introspection_endpoint"], token=token["access_token"])
    assert info.status_code == 200 and info.json()["active"] is True
    revoked = client.revoke_token(discovery["revocation_endpoint"], token=token["access_token"])
    assert revoked.status_code == 200
    info = client.introspect_token(discovery["introspection_endpoint"], token=token["access_token"])
    assert info.json() == {"active": False}


def test_private_key_jwt_from_discovery(world: A2A, live: str) -> None:
    discovery = discover(live)
    assert "private_key_jwt" in discovery["token_endpoint_auth_methods_supported"]
    assert "ES256" in discovery["token_endpoint_auth_signing_alg_values_supported"]
    key = world.keys["urssaf-batch"]
    client = OAuth2Session("urssaf-batch", key, token_endpoint_auth_method="private_key_jwt")
    client.register_client_auth_method(
        ShortPrivateKeyJWT(discovery["token_endpoint"], alg="ES256", headers={"kid": key.kid})
    )
    first = client.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")
    second = client.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")
    for token in (first, second):  # a fresh assertion (jti) each time
        claims = verify_with_jwcrypto(token["access_token"], discovery, URSSAF_API)
        assert claims["sub"] == "urssaf-batch"
        assert claims["acr"] == "urn:interops:acr:machine"

    # a tampered token does not verify with jwcrypto either (the check can fail)
    head, payload, signature = first["access_token"].split(".")
    with pytest.raises(JWException):
        verify_with_jwcrypto(f"{head}.{payload}.{signature[:-6]}AAAAAA", discovery, URSSAF_API)

    # introspection authenticated by private_key_jwt, the assertion aimed at that endpoint
    inspector = OAuth2Session("urssaf-batch", key, token_endpoint_auth_method="private_key_jwt")
    inspector.register_client_auth_method(
        ShortPrivateKeyJWT(None, alg="ES256", headers={"kid": key.kid})
    )
    info = inspector.introspect_token(
        discovery["introspection_endpoint"], token=first["access_token"]
    )
    assert info.status_code == 200 and info.json()["active"] is True
