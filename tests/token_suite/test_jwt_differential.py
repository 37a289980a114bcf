"""Differential test of the lean verifier against PyJWT (docs/architecture.md,
"Règles du code" 5).

Property: whatever token hypothesis builds (headers, claims, keys, signatures,
byte-level mutations), if ``token_suite.jwt.verify`` accepts it then
``jwt.PyJWT().decode`` accepts it too, with the key and algorithm published for
its ``kid``, and both read the same claims. Ours may refuse more (it is stricter).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import jwt as pyjwt
import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.token_suite.jwt_support import (
    ATTACKER,
    AUDIENCE,
    ES256,
    ISSUER,
    PS256,
    RS256,
    fresh_cache,
    trust,
)
from token_suite import jwt
from token_suite.errors import InteropsError

TRUST = trust()
PYJWT = pyjwt.PyJWT()
KEYS = {key.kid: key for key in (ES256, RS256, PS256, ATTACKER)}
OFFSETS = [-3600, -300, -100.5, -100, -50, -0.5, 0, 0.5, 50, 100, 100.5, 300, 3600]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


text = st.sampled_from(["", "x", "PAGM_DSN_DECL", "é", 'a"b', ISSUER, AUDIENCE])
numeric = st.one_of(
    st.sampled_from(OFFSETS).map(lambda offset: ("now", offset)),
    st.sampled_from(["soon", None, True, [1]]),
)
HEADER_CHANGES = st.sampled_from(
    [
        ("alg", "ES256"),
        ("alg", "RS256"),
        ("alg", "PS256"),
        ("alg", "none"),
        ("alg", "HS256"),
        ("alg", None),
        ("kid", ATTACKER.kid),
        ("kid", "../x"),
        ("kid", 3),
        ("kid", None),
        ("typ", "at+jwt"),
        ("typ", None),
        ("jku", "https://evil.example"),
        ("crit", ["b64"]),
        ("b64", False),
        ("cty", "JWT"),
    ]
)
CLAIM_CHANGES = st.one_of(
    st.tuples(st.sampled_from(["iss", "sub", "jti", "acr", "siret"]), text),
    st.tuples(st.sampled_from(["exp", "iat", "nbf", "auth_time"]), numeric),
    st.tuples(
        st.sampled_from(["aud"]),
        st.sampled_from([[AUDIENCE], ["urn:x", AUDIENCE], "urn:x", [], 5, None]),
    ),
    st.tuples(st.sampled_from(["pagm"]), st.sampled_from([[], "P", [1], None])),
    st.tuples(
        st.sampled_from(["habilitations"]),
        st.sampled_from([[{"service": "DSN"}], {}, [{"service": "S", "siret": "1", "role": "R"}]]),
    ),
    st.tuples(st.sampled_from(["iss", "sub", "jti", "exp", "iat"]), st.none()),
)


def valid_claims() -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": "D1",
        "aud": AUDIENCE,
        "iat": ("now", -10),
        "nbf": ("now", -10),
        "exp": ("now", 200),
        "jti": "j1",
        "pagm": ["PAGM_DSN_DECL"],
        "habilitations": [{"service": "DSN", "siret": "73282932000074", "role": "DECLARANT"}],
    }


def changed(base: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(base)
    for name, value in changes:
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def resolve(claims: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        name: now + value[1] if isinstance(value, tuple) else value
        for name, value in claims.items()
    }


def sign(header: dict[str, Any], signing_input: bytes, signer: str) -> bytes:
    key = KEYS[signer]
    alg = header.get("alg")
    if alg in ("ES256", "RS256", "PS256") and (alg == "ES256") == (key.alg == "ES256"):
        return replace(key, alg=alg).sign(signing_input)  # sign as the header says
    return key.sign(signing_input)


def spell(claims: dict[str, Any], spelling: str) -> bytes:
    """``json`` (the strict decoder's path), ``orjson`` (compact: the fast path),
    ``duplicate``: compact with a second ``sub`` member, which must be refused."""
    if spelling == "json":
        return json.dumps(claims).encode()
    compact = orjson.dumps(claims)
    return compact[:-1] + b',"sub":"D2"}' if spelling == "duplicate" else compact


@st.composite
def tokens(draw: st.DrawFn) -> str:
    now = time.time()
    key = draw(st.sampled_from([ES256, RS256, PS256]))
    header = changed(
        {"alg": key.alg, "kid": key.kid, "typ": "JWT"}, draw(st.lists(HEADER_CHANGES, max_size=2))
    )
    claims = resolve(changed(valid_claims(), draw(st.lists(CLAIM_CHANGES, max_size=2))), now)
    payload = spell(claims, draw(st.sampled_from(["json", "orjson", "duplicate"])))
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    signer = draw(st.sampled_from([key.kid] * 4 + list(KEYS)))
    token = f"{signing_input}.{b64(sign(header, signing_input.encode(), signer))}"
    mutation = draw(st.sampled_from(["none"] * 6 + ["pad", "flip", "cut", "space"]))
    position = int(draw(st.floats(0, 1)) * (len(token) - 1))  # length varies with the clock
    if mutation == "pad":
        token += "="
    elif mutation == "flip":
        token = token[:position] + chr(ord(token[position]) ^ 1) + token[position + 1 :]
    elif mutation == "cut":
        token = token[:position]
    elif mutation == "space":
        token = token[:position] + " " + token[position:]
    return token


def ours(token: str) -> dict[str, Any] | None:
    try:
        vector = jwt.verify(
            token,
            trust=TRUST,
            audience=AUDIENCE,
            now=datetime.now(UTC),
            replay=fresh_cache(datetime.now(UTC)),
        )
    except InteropsError:
        return None
    return vector.claims


def theirs(token: str) -> dict[str, Any]:
    kid = PYJWT.decode_complete(token, options={"verify_signature": False})["header"]["kid"]
    claims: dict[str, Any] = PYJWT.decode(
        token,
        TRUST.jwt_keys[kid],
        algorithms=[TRUST.jwt_algs[kid]],
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=60,
        options={"require": ["exp", "iat", "iss", "aud", "jti", "sub"]},
    )
    return claims


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_ours_accepts_only_what_pyjwt_accepts(token: str) -> None:
    accepted = ours(token)
    event("accepted" if accepted is not None else "refused")
    if accepted is not None:
        assert theirs(token) == accepted
        payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
        json.loads(payload, object_pairs_hook=unique_members)  # no duplicate slipped through


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    assert len({name for name, _ in pairs}) == len(pairs), pairs
    return dict(pairs)


def test_generated_valid_tokens_are_accepted_by_both() -> None:
    """Liveness: the property above is not vacuous."""
    now = int(time.time())
    for index, key in enumerate([ES256, RS256, PS256] * 5):
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"D{index}", "jti": f"j{index}"}
        claims.update(iat=now - index, exp=now + 60 + index, nbf=now - 2 * index)
        header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
        for spelling in ("json", "orjson"):
            payload = b64(spell(claims, spelling))
            signing_input = f"{b64(json.dumps(header).encode())}.{payload}"
            token = f"{signing_input}.{b64(key.sign(signing_input.encode()))}"
            assert ours(token) == claims == theirs(token)
            duplicate = f"{b64(json.dumps(header).encode())}.{b64(spell(claims, 'duplicate'))}"
            forged = f"{duplicate}.{b64(key.sign(duplicate.encode()))}"
            assert ours(forged) is None
            assert theirs(forged)["sub"] == "D2"  # PyJWT keeps the last member
