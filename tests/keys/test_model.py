"""keys.model: JWK members, RFC 7638 thumbprints, JOSE signatures."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto import jwk

from keys.model import SigningKey, public_jwk_members, thumbprint

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_thumbprint_matches_jwcrypto(es_key: SigningKey, rs_key: SigningKey) -> None:
    for key in (es_key, rs_key):
        reference = jwk.JWK(**public_jwk_members(key.public_key)).thumbprint()
        assert thumbprint(key.public_key) == reference == key.kid


def test_rfc7638_example() -> None:
    """The example key of RFC 7638 section 3.1 and its published thumbprint."""
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
        "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )

    def b64u(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    public_key = rsa.RSAPublicNumbers(b64u("AQAB"), b64u(n)).public_key()
    assert thumbprint(public_key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_public_jwk_has_only_public_members(es_key: SigningKey, rs_key: SigningKey) -> None:
    assert set(es_key.public_jwk()) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert set(rs_key.public_jwk()) == {"kty", "n", "e", "kid", "alg", "use"}
    assert rs_key.public_jwk()["e"] == "AQAB"
    assert es_key.public_jwk()["use"] == "sig"
    json.dumps(es_key.public_jwk())


def test_unsupported_curve_refused() -> None:
    with pytest.raises(ValueError, match="unsupported public key type"):
        public_jwk_members(ec.generate_private_key(ec.SECP384R1()).public_key())


def test_es256_signature_is_raw_r_s(es_key: SigningKey) -> None:
    signature = es_key.sign(b"payload")
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public_key = es_key.public_key
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(der, b"payload", ec.ECDSA(hashes.SHA256()))


def test_rs256_and_ps256_signatures_verify(rs_key: SigningKey) -> None:
    public_key = rs_key.public_key
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(rs_key.sign(b"payload"), b"payload", padding.PKCS1v15(), hashes.SHA256())
    ps = SigningKey(
        kid=rs_key.kid,
        use=rs_key.use,
        alg="PS256",
        state=rs_key.state,
        private_key=rs_key.private_key,
        created_at=NOW,
    )
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    public_key.verify(ps.sign(b"payload"), b"payload", pss, hashes.SHA256())


def test_sign_refuses_alg_foreign_to_key(es_key: SigningKey) -> None:
    wrong = SigningKey(
        kid=es_key.kid,
        use=es_key.use,
        alg="RS256",
        state=es_key.state,
        private_key=es_key.private_key,
        created_at=NOW,
    )
    with pytest.raises(ValueError, match="cannot sign with RS256"):
        wrong.sign(b"payload")
