"""keys.io: PEM (PKCS#8, encrypted or not) and PKCS#12 import and export."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from keys.crypto import MasterKey
from keys.generate import generate_key
from keys.io import KeyImportError, export_pem, export_pkcs12, import_pem, import_pkcs12
from keys.keyring import Keyring
from keys.model import KeyState, KeyUse, SigningKey
from keys.store import InMemoryKeyStore

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSPHRASE = "correct horse battery staple"


def _pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(key: SigningKey) -> bytes:
    assert key.certificate is not None
    return key.certificate.public_bytes(serialization.Encoding.PEM)


def test_plain_pem_round_trip(es_key: SigningKey) -> None:
    pem = export_pem(es_key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    imported = import_pem(pem, use=KeyUse.JWT, now=NOW)
    assert (imported.kid, imported.alg, imported.state) == (es_key.kid, "ES256", KeyState.NEXT)
    assert imported.certificate is None and imported.activated_at is None


def test_encrypted_pem_round_trip(rs_key: SigningKey) -> None:
    pem = export_pem(rs_key, passphrase=PASSPHRASE)
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    imported = import_pem(pem, use=KeyUse.JWT, now=NOW, passphrase=PASSPHRASE.encode(), alg="PS256")
    assert (imported.kid, imported.alg) == (rs_key.kid, "PS256")


@pytest.mark.parametrize(
    ("passphrase", "message"),
    [("wrong", "wrong passphrase"), (None, "not given .*check the passphrase"), ("", "empty")],
)
def test_encrypted_pem_needs_right_passphrase(
    es_key: SigningKey, passphrase: str | None, message: str
) -> None:
    pem = export_pem(es_key, passphrase=PASSPHRASE)
    with pytest.raises(KeyImportError, match=message):
        import_pem(pem, use=KeyUse.JWT, now=NOW, passphrase=passphrase)


def test_plain_pem_with_passphrase_refused(es_key: SigningKey) -> None:
    with pytest.raises(KeyImportError, match="not encrypted.*check the passphrase"):
        import_pem(export_pem(es_key), use=KeyUse.JWT, now=NOW, passphrase="x")


def test_not_a_pem_refused() -> None:
    with pytest.raises(KeyImportError, match="not a PEM private key"):
        import_pem(b"hello", use=KeyUse.JWT, now=NOW)


def test_saml_certificate_kept_or_generated(saml_key: SigningKey) -> None:
    with_cert = export_pem(saml_key, include_certificate=True)
    kept = import_pem(with_cert, use=KeyUse.SAML, now=NOW, state=KeyState.ACTIVE)
    assert kept.certificate == saml_key.certificate
    assert kept.activated_at == NOW
    separate = import_pem(
        export_pem(saml_key), use=KeyUse.SAML, now=NOW, certificate_pem=_cert_pem(saml_key)
    )
    assert separate.certificate == saml_key.certificate
    generated = import_pem(export_pem(saml_key), use=KeyUse.SAML, now=NOW)
    assert generated.certificate is not None and generated.certificate != saml_key.certificate
    assert generated.certificate.public_key() == saml_key.public_key


def test_matching_certificate_found_in_a_chain(saml_key: SigningKey) -> None:
    foreign = generate_key(KeyUse.SAML, now=NOW, alg="ES256")
    data = export_pem(saml_key) + _cert_pem(foreign) + _cert_pem(saml_key)
    assert import_pem(data, use=KeyUse.SAML, now=NOW).certificate == saml_key.certificate


def test_certificate_for_another_key_refused(saml_key: SigningKey) -> None:
    foreign = generate_key(KeyUse.SAML, now=NOW, alg="ES256")
    with pytest.raises(KeyImportError, match="for another key"):
        import_pem(
            export_pem(saml_key), use=KeyUse.SAML, now=NOW, certificate_pem=_cert_pem(foreign)
        )


def test_unreadable_certificate_refused(es_key: SigningKey) -> None:
    broken = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    with pytest.raises(KeyImportError, match="certificate in the file cannot be read"):
        import_pem(export_pem(es_key), use=KeyUse.JWT, now=NOW, certificate_pem=broken)


def test_include_certificate_without_certificate(es_key: SigningKey) -> None:
    assert export_pem(es_key, include_certificate=True) == export_pem(es_key)


@pytest.mark.parametrize(
    ("use", "alg", "fixture"),
    [
        (KeyUse.SAML, "PS256", "rs_key"),
        (KeyUse.JWT, "ES256", "rs_key"),
        (KeyUse.JWT, "RS256", "es_key"),
    ],
)
def test_algorithm_must_fit_key_and_use(
    use: KeyUse, alg: str, fixture: str, request: pytest.FixtureRequest
) -> None:
    key: SigningKey = request.getfixturevalue(fixture)
    with pytest.raises(KeyImportError, match=f"algorithm {alg} does not fit"):
        import_pem(export_pem(key), use=use, now=NOW, alg=alg)


@pytest.fixture(scope="module")
def small_rsa_pem() -> bytes:
    """1024-bit RSA, only to check that it is refused."""
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))


def test_weak_or_unsupported_keys_refused(small_rsa_pem: bytes) -> None:
    cases = [
        (small_rsa_pem, "RSA key of 1024 bits"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "EC curve secp384r1 unsupported"),
        (_pem(ed25519.Ed25519PrivateKey.generate()), "unsupported key type Ed25519"),
        (_pem(dsa.generate_private_key(key_size=2048)), "unsupported key type DSA"),
    ]
    for pem, message in cases:
        with pytest.raises(KeyImportError, match=message):
            import_pem(pem, use=KeyUse.JWT, now=NOW)


def test_pkcs12_round_trip(saml_key: SigningKey) -> None:
    data = export_pkcs12(saml_key, passphrase=PASSPHRASE)
    key, certificate, _ = pkcs12.load_key_and_certificates(data, PASSPHRASE.encode())
    assert certificate == saml_key.certificate and key is not None
    imported = import_pkcs12(data, passphrase=PASSPHRASE, use=KeyUse.SAML, now=NOW)
    assert imported.kid == saml_key.kid
    assert imported.certificate == saml_key.certificate
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE.encode())
    assert loaded.cert is not None and loaded.cert.friendly_name == saml_key.kid.encode()


def test_pkcs12_without_certificate(es_key: SigningKey) -> None:
    data = export_pkcs12(es_key, passphrase=PASSPHRASE.encode(), friendly_name="jwt key")
    imported = import_pkcs12(data, passphrase=PASSPHRASE, use=KeyUse.JWT, now=NOW)
    assert imported.kid == es_key.kid and imported.certificate is None
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE.encode())
    assert loaded.key is not None


def test_pkcs12_with_certificate_in_chain_only(saml_key: SigningKey) -> None:
    encryption = serialization.BestAvailableEncryption(b"pw")
    assert saml_key.certificate is not None
    chain = [saml_key.certificate]
    data = pkcs12.serialize_key_and_certificates(
        b"k", saml_key.private_key, None, chain, encryption
    )
    imported = import_pkcs12(data, passphrase="pw", use=KeyUse.SAML, now=NOW)
    assert imported.certificate == saml_key.certificate


def test_pkcs12_errors(saml_key: SigningKey) -> None:
    data = export_pkcs12(saml_key, passphrase=PASSPHRASE)
    with pytest.raises(KeyImportError, match="wrong passphrase"):
        import_pkcs12(data, passphrase="wrong", use=KeyUse.SAML, now=NOW)
    with pytest.raises(KeyImportError, match="not a PKCS#12"):
        import_pkcs12(b"junk", passphrase="x", use=KeyUse.SAML, now=NOW)
    with pytest.raises(KeyImportError, match="must not be empty"):
        export_pkcs12(saml_key, passphrase="")
    with pytest.raises(KeyImportError, match="must not be empty"):
        import_pkcs12(data, passphrase=b"", use=KeyUse.SAML, now=NOW)
    assert saml_key.certificate is not None
    chain = [saml_key.certificate]
    encryption = serialization.BestAvailableEncryption(b"pw")
    certificates_only = pkcs12.serialize_key_and_certificates(None, None, None, chain, encryption)
    with pytest.raises(KeyImportError, match="holds no private key"):
        import_pkcs12(certificates_only, passphrase="pw", use=KeyUse.SAML, now=NOW)


def test_imported_key_joins_a_keyring(saml_key: SigningKey, master_key: MasterKey) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key)
    data = export_pkcs12(saml_key, passphrase=PASSPHRASE)
    keyring.add(
        import_pkcs12(data, passphrase=PASSPHRASE, use=KeyUse.SAML, now=NOW, state=KeyState.ACTIVE)
    )
    active = keyring.active(KeyUse.SAML)
    assert active.kid == saml_key.kid and active.certificate == saml_key.certificate
