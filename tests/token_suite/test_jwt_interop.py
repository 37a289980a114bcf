"""Interop: our tokens verify with PyJWT, jwcrypto and joserfc from the published JWKS
alone, and tokens signed by jwcrypto with a key of that JWKS verify with ours."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jws as joserfc_jws
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

from keys.jwks import jwks
from tests.token_suite.jwt_support import (
    AUDIENCE,
    ES256,
    ISSUER,
    NOW,
    PS256,
    RS256,
    VECTOR,
    fresh_cache,
    trust,
)
from token_suite import jwt
from token_suite.errors import FailedCheck

KEYS = [ES256, RS256, PS256]
PUBLISHED = jwks(KEYS)  # what the operator publishes (keys/jwks.py)


def our_token(key: Any) -> str:
    return jwt.issue(VECTOR, signer=key, issuer=ISSUER, audience=AUDIENCE, now=NOW)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.alg)
def test_jwcrypto_verifies_our_tokens_from_the_jwks(key: Any) -> None:
    keyset = jwcrypto_jwk.JWKSet.from_json(json.dumps(PUBLISHED))
    token = jwcrypto_jwt.JWT(jwt=our_token(key), key=keyset, algs=[key.alg], check_claims=False)
    claims = json.loads(token.claims)
    assert claims["sub"] == VECTOR.subject and claims["aud"] == AUDIENCE
    assert json.loads(token.header)["kid"] == key.kid


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.alg)
def test_joserfc_verifies_our_tokens_from_the_jwks(key: Any) -> None:
    keyset = KeySet.import_key_set(PUBLISHED)
    token = joserfc_jwt.decode(our_token(key), keyset, algorithms=[key.alg])
    assert token.claims["sub"] == VECTOR.subject
    assert token.header["kid"] == key.kid
    registry = joserfc_jwt.JWTClaimsRegistry(
        now=int(NOW.timestamp()), leeway=60, iss={"essential": True, "value": ISSUER}
    )
    registry.validate(token.claims)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.alg)
def test_pyjwt_verifies_our_tokens(key: Any) -> None:
    jwk_set = pyjwt.PyJWKSet.from_dict(PUBLISHED)
    signing_key = next(k for k in jwk_set.keys if k.key_id == key.kid)
    claims = pyjwt.decode(
        our_token(key),
        signing_key,
        algorithms=[key.alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["pagm"] == list(VECTOR.pagm)


def jwcrypto_signed(key: Any, claims: dict[str, Any]) -> str:
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private = jwcrypto_jwk.JWK.from_pem(pem)
    token = jwcrypto_jwt.JWT(header={"alg": key.alg, "kid": key.kid, "typ": "JWT"}, claims=claims)
    token.make_signed_token(private)
    serialized: str = token.serialize()
    return serialized


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.alg)
def test_tokens_signed_by_jwcrypto_verify_with_ours(key: Any) -> None:
    ts = int(NOW.timestamp())
    claims = {
        "iss": ISSUER,
        "sub": "D0000002",
        "aud": [AUDIENCE],
        "iat": ts,
        "exp": ts + 120,
        "jti": f"jwcrypto-{key.alg}",
        "pagm": ["PAGM_DSN_DECL"],
        "habilitations": [{"service": "DSN", "siret": "73282932000074", "role": "DECLARANT"}],
    }
    token = jwcrypto_signed(key, claims)
    vector = jwt.verify(token, trust=trust(), audience=AUDIENCE, now=NOW, replay=fresh_cache())
    assert vector.subject == "D0000002" and vector.pagm == ("PAGM_DSN_DECL",)
    assert vector.claims == claims


def test_joserfc_signed_token_verifies_with_ours() -> None:
    keyset = KeySet.import_key_set(
        {"keys": [dict(ES256.public_jwk(), d=_private_d(ES256))]}  # private, for signing only
    )
    ts = int(time.time())
    claims = {"iss": ISSUER, "sub": "D3", "aud": AUDIENCE, "iat": ts, "exp": ts + 60, "jti": "j"}
    token = joserfc_jwt.encode({"alg": "ES256", "kid": ES256.kid}, claims, keyset)
    assert jwt.verify(token, trust=trust(), audience=AUDIENCE, replay=fresh_cache()).subject == "D3"
    forged = joserfc_jws.serialize_compact(
        {"alg": "HS256", "kid": ES256.kid}, json.dumps(claims), _oct_from_jwk()
    )
    with pytest.raises(FailedCheck):
        jwt.verify(forged, trust=trust(), audience=AUDIENCE, replay=fresh_cache())


def _private_d(key: Any) -> str:
    value = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def _oct_from_jwk() -> Any:
    from joserfc.jwk import OctKey

    return OctKey.import_key(json.dumps(ES256.public_jwk()).encode())
