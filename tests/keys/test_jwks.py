"""keys.jwks: publishing a JWKS, and reading one strictly."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwcrypto import jwk

from keys.generate import generate_key
from keys.jwks import MAX_KEYS, JWKSError, check_kid, jwks, public_keys_from_jwks
from keys.model import KeyUse, SigningKey, public_jwk_members

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def small_rsa() -> rsa.RSAPrivateKey:
    """1024-bit RSA, only to check that such a published key is refused."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_jwks_kids_are_jwcrypto_thumbprints(
    saml_key: SigningKey, es_key: SigningKey, rs_key: SigningKey
) -> None:
    published = jwks([saml_key, es_key, rs_key])
    assert [entry["kid"] for entry in published["keys"]] == [saml_key.kid, es_key.kid, rs_key.kid]
    for entry in published["keys"]:
        members = {k: v for k, v in entry.items() if k in ("kty", "crv", "x", "y", "n", "e")}
        assert entry["kid"] == jwk.JWK(**members).thumbprint()
        assert entry["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(entry)


def test_jwks_certificate_as_x5c(saml_key: SigningKey, es_key: SigningKey) -> None:
    saml_entry, es_entry = jwks([saml_key, es_key])["keys"]
    assert "x5c" not in es_entry
    assert saml_key.certificate is not None
    der = saml_key.certificate.public_bytes(serialization.Encoding.DER)
    assert saml_entry["x5c"] == [base64.b64encode(der).decode()]
    assert saml_entry["alg"] == "RS256"


def test_jwks_refuses_inconsistent_keys(saml_key: SigningKey, es_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="not the thumbprint"):
        jwks([replace(es_key, kid="other")])
    other = generate_key(KeyUse.SAML, now=NOW, alg="ES256")
    with pytest.raises(ValueError, match="certificate of key .* is for another key"):
        jwks([replace(saml_key, certificate=other.certificate)])


def test_round_trip(saml_key: SigningKey, es_key: SigningKey, rs_key: SigningKey) -> None:
    keys = public_keys_from_jwks(jwks([saml_key, es_key, rs_key]))
    assert keys == {
        saml_key.kid: ("RS256", saml_key.public_key),
        es_key.kid: ("ES256", es_key.public_key),
        rs_key.kid: ("RS256", rs_key.public_key),
    }


def test_foreign_jwks_defaults(es_key: SigningKey, rs_key: SigningKey) -> None:
    """A foreign kid is kept; a missing kid is the thumbprint; EC alg defaults to ES256."""
    ec_entry = public_jwk_members(es_key.public_key)
    rsa_entry = {**public_jwk_members(rs_key.public_key), "kid": "partner-2024", "alg": "PS256"}
    enc_entry = {**public_jwk_members(rs_key.public_key), "use": "enc", "kid": "enc"}
    wrap_entry = {**public_jwk_members(rs_key.public_key), "key_ops": ["wrapKey"], "kid": "wrap"}
    keys = public_keys_from_jwks({"keys": [ec_entry, rsa_entry, enc_entry, wrap_entry]})
    assert keys == {
        es_key.kid: ("ES256", es_key.public_key),
        "partner-2024": ("PS256", rs_key.public_key),
    }


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_private_members_refused(es_key: SigningKey, member: str) -> None:
    entry = {**es_key.public_jwk(), member: "AAAA"}
    with pytest.raises(JWKSError, match="private members"):
        public_keys_from_jwks({"keys": [entry]})


def test_private_members_refused_even_for_encryption_keys(rs_key: SigningKey) -> None:
    entry = {**rs_key.public_jwk(), "use": "enc", "d": "AAAA"}
    with pytest.raises(JWKSError, match="private members"):
        public_keys_from_jwks({"keys": [entry]})


def test_full_private_jwk_from_jwcrypto_refused(es_key: SigningKey) -> None:
    pem = es_key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private = jwk.JWK.from_pem(pem).export_private(as_dict=True)
    with pytest.raises(JWKSError, match=r"private members \['d'\]"):
        public_keys_from_jwks({"keys": [private]})


def _modified(key: SigningKey, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = copy.deepcopy(key.public_jwk())
    for name, value in changes.items():
        if value is None:
            entry.pop(name, None)
        else:
            entry[name] = value
    return entry


P384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
Keys = tuple[SigningKey, SigningKey, rsa.RSAPrivateKey]
BAD_DOCUMENTS: list[tuple[str, Callable[[Keys], Any], str]] = [
    ("oct", lambda k: {"keys": [{"kty": "oct", "kid": "h"}]}, "unsupported kty 'oct'"),
    (
        "okp",
        lambda k: {"keys": [_modified(k[0], kty="OKP", crv="Ed25519")]},
        "unsupported kty 'OKP'",
    ),
    ("p384", lambda k: {"keys": [_modified(k[0], crv="P-384")]}, "unsupported curve 'P-384'"),
    (
        "short-x",
        lambda k: {"keys": [_modified(k[0], x=_b64u(b"\x01" * 31))]},
        "'x' must be 32 bytes",
    ),
    (
        "long-x",
        lambda k: {"keys": [_modified(k[0], x=_b64u(P384.x.to_bytes(48, "big")))]},
        "32 bytes",
    ),
    ("no-y", lambda k: {"keys": [_modified(k[0], y=None)]}, "'y' must be base64url"),
    ("padded", lambda k: {"keys": [_modified(k[0], x=k[0].public_jwk()["x"] + "=")]}, "base64url"),
    (
        "bad-length",
        lambda k: {"keys": [_modified(k[0], x=k[0].public_jwk()["x"] + "AA")]},
        "base64url",
    ),
    (
        "off-curve",
        lambda k: {"keys": [_modified(k[0], y=_b64u(b"\x00" * 31 + b"\x01"))]},
        "not on P-256",
    ),
    ("ec-rs256", lambda k: {"keys": [_modified(k[0], alg="RS256")]}, "one of ES256 for a EC key"),
    ("rsa-no-alg", lambda k: {"keys": [_modified(k[1], alg=None)]}, "RS256, PS256 for a RSA key"),
    ("hs256", lambda k: {"keys": [_modified(k[1], alg="HS256")]}, "alg must be one of"),
    ("none", lambda k: {"keys": [_modified(k[1], alg="none")]}, "alg must be one of"),
    ("e-even", lambda k: {"keys": [_modified(k[1], e="AAQ")]}, "odd e >= 3"),
    ("e-one", lambda k: {"keys": [_modified(k[1], e="AQ")]}, "odd e >= 3"),
    (
        "rsa-1024",
        lambda k: {"keys": [{**public_jwk_members(k[2].public_key()), "alg": "RS256"}]},
        "2048 bits",
    ),
    ("n-int", lambda k: {"keys": [_modified(k[1], n=123)]}, "'n' must be base64url"),
    ("not-object", lambda k: {"keys": ["not an object"]}, "key #0 is not a JSON object"),
    ("keys-dict", lambda k: {"keys": {}}, "list under 'keys'"),
    ("no-keys", lambda k: {"key": []}, "list under 'keys'"),
    ("list", lambda k: ["keys"], "list under 'keys'"),
    ("empty", lambda k: {"keys": []}, "no signature key"),
    ("enc-only", lambda k: {"keys": [_modified(k[0], use="enc")]}, "no signature key"),
    ("key-ops-str", lambda k: {"keys": [_modified(k[0], key_ops="verify")]}, "no signature key"),
    ("twice", lambda k: {"keys": [k[0].public_jwk(), k[0].public_jwk()]}, "appears twice"),
    ("too-many", lambda k: {"keys": [k[0].public_jwk()] * (MAX_KEYS + 1)}, f"at most {MAX_KEYS}"),
]


@pytest.mark.parametrize(
    ("build", "message"), [c[1:] for c in BAD_DOCUMENTS], ids=[c[0] for c in BAD_DOCUMENTS]
)
def test_bad_documents_refused(
    build: Callable[[Keys], Any],
    message: str,
    es_key: SigningKey,
    rs_key: SigningKey,
    small_rsa: rsa.RSAPrivateKey,
) -> None:
    with pytest.raises(JWKSError, match=message):
        public_keys_from_jwks(build((es_key, rs_key, small_rsa)))


def test_small_public_exponent_three_accepted(rs_key: SigningKey) -> None:
    entry = _modified(rs_key, e="Aw", kid="e3")
    assert public_keys_from_jwks({"keys": [entry]})["e3"][0] == "RS256"


@pytest.mark.parametrize(
    "kid",
    [
        "../etc/passwd",
        "a/b",
        "a\\b",
        "..",
        "a\x00b",
        "line\nbreak",
        "del\x7f",
        "",
        "k" * 129,
        42,
        None,
    ],
)
def test_unsafe_kids_refused(es_key: SigningKey, kid: Any) -> None:
    with pytest.raises(JWKSError, match="kid"):
        public_keys_from_jwks({"keys": [{**es_key.public_jwk(), "kid": kid}]})


@pytest.mark.parametrize("kid", ["k" * 128, "2024-01.rsa", "a.b", "é-key", "key id with spaces"])
def test_safe_kids_accepted(es_key: SigningKey, kid: str) -> None:
    assert check_kid(kid) is None
    published = public_keys_from_jwks({"keys": [{**es_key.public_jwk(), "kid": kid}]})
    assert list(published) == [kid]
    assert published[kid][0] == "ES256"
    assert published[kid][1].public_numbers() == es_key.public_key.public_numbers()


def test_x5c_checked(saml_key: SigningKey, es_key: SigningKey) -> None:
    entry = jwks([saml_key])["keys"][0]
    assert saml_key.kid in public_keys_from_jwks({"keys": [entry]})
    foreign = jwks([generate_key(KeyUse.SAML, now=NOW, alg="ES256")])["keys"][0]["x5c"]
    mismatched = {**es_key.public_jwk(), "x5c": foreign}
    with pytest.raises(JWKSError, match="x5c certificate is for another key"):
        public_keys_from_jwks({"keys": [mismatched]})
    broken: Any
    for broken in ([], "MIIB", ["not base64!"], [base64.b64encode(b"junk").decode()], [None], {}):
        with pytest.raises(JWKSError, match="x5c is not a list"):
            public_keys_from_jwks({"keys": [{**es_key.public_jwk(), "x5c": broken}]})


def test_ed25519_key_type_refused() -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    entry = {"kty": "OKP", "crv": "Ed25519", "x": _b64u(raw), "alg": "EdDSA"}
    with pytest.raises(JWKSError, match="unsupported kty"):
        public_keys_from_jwks({"keys": [entry]})
