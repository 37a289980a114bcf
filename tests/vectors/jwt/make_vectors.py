"""Build the Interops-R JWT attack vectors (``vectors.json``) and the JWKS they trust.

Run from the repository root: ``python tests/vectors/jwt/make_vectors.py`` (add
``--new-keys`` to replace the stored keys). The output is reproducible: fixed
keys stored here, a fixed clock, deterministic ECDSA (RFC 6979) and RSA PKCS#1
v1.5 signatures; ``tests/token_suite/test_jwt_vectors.py`` checks that running
:func:`build` again gives the stored file byte for byte.

Each vector says how to verify (``options``), how many times to present it
(``presentations``) and the error code expected at the last presentation
(``null``: accepted). Tokens are assembled here by hand, independently of
``token_suite.jwt``, so that the verifier is tested against tokens it did not make.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
ISSUER = "https://idp.interops.example"
AUDIENCE = "urn:interops:partner:api"
NOW = 1740823200  # 2025-03-01T10:00:00Z
NOW_ISO = "2025-03-01T10:00:00+00:00"
KEY_FILES = {"es256": "es256.pem", "rs256": "rs256.pem", "ps256": "ps256.pem"}
KEY_FILES["attacker"] = "attacker_es256.pem"

sys.path.insert(0, str(ROOT))

from keys.model import public_jwk_members, thumbprint


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def load_keys() -> dict[str, Any]:
    return {
        name: serialization.load_pem_private_key((HERE / file).read_bytes(), None)
        for name, file in KEY_FILES.items()
    }


def new_keys() -> None:
    for name, file in KEY_FILES.items():
        key: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if name.startswith(("rs", "ps"))
            else ec.generate_private_key(ec.SECP256R1())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (HERE / file).write_bytes(pem)


def kid(key: Any) -> str:
    return thumbprint(key.public_key())


def jwks(keys: dict[str, Any]) -> dict[str, Any]:
    """The trusted JWKS: es256 (ES256), rs256 (RS256), ps256 (PS256); not the attacker."""
    entries = []
    for name, alg in (("es256", "ES256"), ("rs256", "RS256"), ("ps256", "PS256")):
        jwk = public_jwk_members(keys[name].public_key())
        jwk.update({"kid": kid(keys[name]), "alg": alg, "use": "sig"})
        entries.append(jwk)
    return {"keys": entries}


def sign(key: Any, alg: str, data: bytes, *, der: bool = False) -> bytes:
    if alg == "ES256":
        signature = key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        if der:
            return bytes(signature)
        r, s = decode_dss_signature(signature)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def token(key: Any, header: dict[str, Any], claims: dict[str, Any], *, der: bool = False) -> str:
    signing_input = f"{b64(compact(header))}.{b64(compact(claims))}".encode("ascii")
    return f"{signing_input.decode()}.{b64(sign(key, header['alg'], signing_input, der=der))}"


def hmac_token(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    signing_input = f"{b64(compact(header))}.{b64(compact(claims))}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "D0000001",
        "aud": AUDIENCE,
        "iat": NOW - 30,
        "nbf": NOW - 30,
        "exp": NOW + 270,
        "jti": "vector-0001",
        "acr": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        "amr": ["pwd"],
        "siret": "73282932000074",
        "pagm": ["PAGM_DSN_DECL"],
        "habilitations": [{"service": "DSN", "siret": "73282932000074", "role": "DECLARANT"}],
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def flip(token_text: str, segment: int) -> str:
    """Flip the lowest bit of one decoded byte of a segment (in a letter, JSON stays valid)."""
    parts = token_text.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[segment] + "=" * (-len(parts[segment]) % 4)))
    index = next(i for i in range(len(raw) - 1, -1, -1) if chr(raw[i]).isalpha())
    raw[index] ^= 1
    parts[segment] = b64(bytes(raw))
    return ".".join(parts)


def build() -> dict[str, Any]:
    keys = load_keys()
    es, rs, ps, attacker = keys["es256"], keys["rs256"], keys["ps256"], keys["attacker"]
    es_header = {"alg": "ES256", "kid": kid(es), "typ": "JWT"}
    good = token(es, es_header, claims())
    rsa_pem = rs.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    es_jwk = json.dumps(jwks(keys)["keys"][0]).encode("utf-8")
    attacker_jwk = dict(public_jwk_members(attacker.public_key()), kid=kid(attacker))
    as_attacker = {"alg": "ES256", "kid": kid(es), "typ": "JWT"}

    def v(name: str, text: str, code: str | None, **extra: Any) -> dict[str, Any]:
        return {"name": name, "token": text, "code": code, **extra}

    vectors = [
        v("valid_es256", good, None),
        v("valid_rs256", token(rs, {"alg": "RS256", "kid": kid(rs)}, claims()), None),
        v("empty", "", "wsse:SecurityTokenUnavailable"),
        v("not_a_jws", "not.a.jws!", "wsse:InvalidSecurityToken"),
        v("two_segments", good.rsplit(".", 1)[0], "wsse:InvalidSecurityToken"),
        v("padded_base64", good + "==", "wsse:InvalidSecurityToken"),
        v(
            "duplicate_alg_member",
            b64(b'{"alg":"none","alg":"ES256","kid":"' + kid(es).encode() + b'"}')
            + good[good.index(".") :],
            "wsse:InvalidSecurityToken",
        ),
        v("oversized", good, "wsse:InvalidSecurityToken", options={"max_size": 256}),
        v(
            "alg_none",
            f"{b64(compact({'alg': 'none', 'kid': kid(es), 'typ': 'JWT'}))}"
            f".{b64(compact(claims()))}.",
            "wsse:FailedCheck",
        ),
        v(
            "hs256_public_key_pem",
            hmac_token(rsa_pem, {"alg": "HS256", "kid": kid(rs)}, claims()),
            "wsse:FailedCheck",
        ),
        v(
            "hs256_public_key_jwk",
            hmac_token(es_jwk, {"alg": "HS256", "kid": kid(es)}, claims()),
            "wsse:FailedCheck",
        ),
        v(
            "unknown_kid",
            token(attacker, {"alg": "ES256", "kid": kid(attacker)}, claims()),
            "wsse:FailedCheck",
        ),
        v(
            "kid_path_traversal",
            token(attacker, {"alg": "ES256", "kid": "../../../../dev/null"}, claims()),
            "wsse:FailedCheck",
        ),
        v(
            "jku_header",
            token(attacker, {**as_attacker, "jku": "https://evil.example/jwks.json"}, claims()),
            "wsse:FailedCheck",
        ),
        v(
            "jwk_header",
            token(attacker, {**as_attacker, "jwk": attacker_jwk}, claims()),
            "wsse:FailedCheck",
        ),
        v(
            "x5u_header",
            token(attacker, {**as_attacker, "x5u": "https://evil.example/cert.pem"}, claims()),
            "wsse:FailedCheck",
        ),
        v(
            "unknown_crit",
            token(es, {**es_header, "crit": ["urn:example:ext"], "urn:example:ext": 1}, claims()),
            "wsse:FailedCheck",
        ),
        v("tampered_header", flip(good, 0), "wsse:FailedCheck"),
        v("tampered_payload", flip(good, 1), "wsse:FailedCheck"),
        v("tampered_signature", flip(good, 2), "wsse:FailedCheck"),
        v(
            "alg_mismatch_rs256_with_ps256_key",
            token(ps, {"alg": "RS256", "kid": kid(ps)}, claims()),
            "wsse:FailedCheck",
        ),
        v("es256_der_signature", token(es, es_header, claims(), der=True), "wsse:FailedCheck"),
        v("typ_mismatch", good, "wsse:FailedCheck", options={"typ": "at+jwt"}),
        v("missing_exp", token(es, es_header, claims(exp=None)), "vi:InvalidVI"),
        v("expired", token(es, es_header, claims(exp=NOW - 61)), "vi:InvalidVI"),
        v("not_yet_valid", token(es, es_header, claims(nbf=NOW + 61)), "vi:InvalidVI"),
        v("wrong_audience", token(es, es_header, claims(aud="urn:other")), "vi:InvalidService"),
        v(
            "wrong_issuer",
            token(es, es_header, claims(iss="https://evil.example")),
            "vi:InvalidIssuer",
        ),
        v(
            "auth_level_too_low",
            good,
            "vi:InvalidAuthLevel",
            options={"min_acr": "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"},
        ),
        v("unknown_pagm", good, "vi:InvalidPagm", options={"known_pagm": ["PAGM_OTHER"]}),
        v("pagm_not_strings", token(es, es_header, claims(pagm=[1])), "wsse:InvalidSecurityToken"),
        v("replayed_jti", good, "vi:Replay", presentations=2),
    ]
    return {"issuer": ISSUER, "audience": AUDIENCE, "now": NOW_ISO, "vectors": vectors}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if "--new-keys" in argv:
        new_keys()
    keys = load_keys()
    (HERE / "jwks.json").write_text(render(jwks(keys)), "utf-8")
    (HERE / "vectors.json").write_text(render(build()), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
