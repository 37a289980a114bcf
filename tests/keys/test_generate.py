"""keys.generate: algorithms per use, RSA sizes, self-signed SAML certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keys.generate import CERTIFICATE_LIFETIME, generate_key, new_private_key
from keys.model import KeyState, KeyUse, SigningKey, thumbprint

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_saml_default_is_rsa_2048_with_certificate(saml_key: SigningKey) -> None:
    assert saml_key.alg == "RS256"
    assert isinstance(saml_key.private_key, rsa.RSAPrivateKey)
    assert saml_key.private_key.key_size == 2048
    certificate = saml_key.certificate
    assert certificate is not None
    assert certificate.public_key() == saml_key.public_key
    assert certificate.not_valid_after_utc == NOW + CERTIFICATE_LIFETIME
    assert certificate.not_valid_before_utc < NOW
    assert saml_key.state is KeyState.ACTIVE and saml_key.activated_at == NOW


def test_jwt_default_is_es256_without_certificate(es_key: SigningKey) -> None:
    assert es_key.alg == "ES256"
    assert isinstance(es_key.private_key, ec.EllipticCurvePrivateKey)
    assert es_key.certificate is None
    assert es_key.state is KeyState.NEXT and es_key.activated_at is None
    assert es_key.kid == thumbprint(es_key.public_key)


def test_saml_es256_gets_a_certificate() -> None:
    key = generate_key(KeyUse.SAML, now=NOW, alg="ES256", common_name="test")
    assert key.certificate is not None
    assert key.certificate.subject.rfc4514_string() == "CN=test"


def test_algorithm_not_allowed_for_use() -> None:
    with pytest.raises(ValueError, match="PS256 not allowed for saml"):
        generate_key(KeyUse.SAML, now=NOW, alg="PS256")


def test_new_private_key_checks_alg_and_size() -> None:
    assert isinstance(new_private_key("ES256"), ec.EllipticCurvePrivateKey)
    with pytest.raises(ValueError, match="RSA size"):
        new_private_key("RS256", rsa_bits=1024)
    with pytest.raises(ValueError, match="unsupported algorithm"):
        new_private_key("HS256")


def test_certificate_validity_starts_before_now(saml_key: SigningKey) -> None:
    assert saml_key.certificate is not None
    assert NOW - saml_key.certificate.not_valid_before_utc == timedelta(minutes=5)
