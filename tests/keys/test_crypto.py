"""keys.crypto: AES-256-GCM encryption at rest of private keys under the master key."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys.crypto import (
    MASTER_KEY_BYTES,
    KeyDecryptionError,
    MasterKey,
    associated_data,
    decrypt_private_key,
    encrypt_private_key,
)
from keys.model import KeyUse, SigningKey


def _seal(key: SigningKey, master_key: MasterKey) -> bytes:
    return encrypt_private_key(
        key.private_key, kid=key.kid, use=key.use, alg=key.alg, master_key=master_key
    )


def _open(blob: bytes, key: SigningKey, master_key: MasterKey) -> object:
    return decrypt_private_key(blob, kid=key.kid, use=key.use, alg=key.alg, master_key=master_key)


def test_master_key_text_round_trip() -> None:
    master_key = MasterKey.generate()
    text = master_key.to_text()
    assert len(text) == 43
    assert MasterKey.from_text(text).to_text() == text
    assert MasterKey.from_text(text + "=\n").to_text() == text
    assert text not in repr(master_key)


def test_generated_master_keys_differ() -> None:
    assert MasterKey.generate().to_text() != MasterKey.generate().to_text()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        base64.urlsafe_b64encode(b"x" * 31).decode(),
        base64.urlsafe_b64encode(b"x" * 33).decode(),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet ('+', '/')
        "A" * 42 + "!",
    ],
)
def test_malformed_master_key_text_refused(text: str) -> None:
    with pytest.raises(ValueError, match="IDP_MASTER_KEY must be") as caught:
        MasterKey.from_text(text)
    assert text.strip() == "" or text not in str(caught.value)


def test_master_key_raw_length_checked() -> None:
    with pytest.raises(ValueError, match=f"exactly {MASTER_KEY_BYTES} bytes"):
        MasterKey(b"\x00" * 16)


def test_round_trip(es_key: SigningKey, rs_key: SigningKey, master_key: MasterKey) -> None:
    for key in (es_key, rs_key):
        opened = _open(_seal(key, master_key), key, master_key)
        assert opened.public_key() == key.public_key  # type: ignore[attr-defined]


def test_ciphertext_holds_no_plaintext_key(rs_key: SigningKey, master_key: MasterKey) -> None:
    blob = _seal(rs_key, master_key)
    der = rs_key.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert b"-----BEGIN" not in blob and b"PRIVATE KEY" not in blob
    assert der[:16] not in blob and der[-32:] not in blob
    private_exponent = rs_key.private_key.private_numbers().d.to_bytes(256, "big")  # type: ignore[union-attr]
    assert private_exponent[:16] not in blob
    assert len(blob) == 1 + 12 + len(der) + 16


def test_two_encryptions_use_different_nonces(es_key: SigningKey, master_key: MasterKey) -> None:
    first, second = _seal(es_key, master_key), _seal(es_key, master_key)
    assert first[1:13] != second[1:13]
    assert first != second


def test_wrong_master_key_refused(es_key: SigningKey, master_key: MasterKey) -> None:
    blob = _seal(es_key, master_key)
    with pytest.raises(KeyDecryptionError, match="wrong IDP_MASTER_KEY"):
        _open(blob, es_key, MasterKey.generate())


@pytest.mark.parametrize("position", [0, 1, 13, 40, -1])
def test_tampered_ciphertext_refused(
    es_key: SigningKey, master_key: MasterKey, position: int
) -> None:
    blob = bytearray(_seal(es_key, master_key))
    blob[position] ^= 0x01
    with pytest.raises(KeyDecryptionError):
        _open(bytes(blob), es_key, master_key)


def test_truncated_ciphertext_refused(es_key: SigningKey, master_key: MasterKey) -> None:
    with pytest.raises(KeyDecryptionError, match="truncated"):
        _open(_seal(es_key, master_key)[:28], es_key, master_key)


def test_ciphertext_bound_to_its_row(
    es_key: SigningKey, rs_key: SigningKey, master_key: MasterKey
) -> None:
    """A ciphertext moved to another row (kid, use or alg) does not decrypt."""
    blob = _seal(es_key, master_key)
    for kid, use, alg in [
        (rs_key.kid, es_key.use, es_key.alg),
        (es_key.kid, KeyUse.SAML, es_key.alg),
        (es_key.kid, es_key.use, "RS256"),
    ]:
        with pytest.raises(KeyDecryptionError):
            decrypt_private_key(blob, kid=kid, use=use, alg=alg, master_key=master_key)


def test_decrypted_key_must_match_kid(
    es_key: SigningKey, rs_key: SigningKey, master_key: MasterKey
) -> None:
    """Even under a valid tag, a key whose thumbprint is not the kid is refused."""
    der = es_key.private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ad = associated_data(kid=rs_key.kid, use=KeyUse.JWT, alg="ES256")
    blob = master_key.encrypt(der, associated_data=ad)
    with pytest.raises(KeyDecryptionError, match="does not match its kid"):
        decrypt_private_key(
            blob, kid=rs_key.kid, use=KeyUse.JWT, alg="ES256", master_key=master_key
        )


def test_decrypted_key_on_other_curve_refused(master_key: MasterKey) -> None:
    der = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ad = associated_data(kid="kid", use=KeyUse.JWT, alg="ES256")
    blob = master_key.encrypt(der, associated_data=ad)
    with pytest.raises(KeyDecryptionError, match="does not match"):
        decrypt_private_key(blob, kid="kid", use=KeyUse.JWT, alg="ES256", master_key=master_key)


def test_associated_data_is_unambiguous() -> None:
    assert associated_data(kid="a,b", use=KeyUse.JWT, alg="c") != associated_data(
        kid="a", use=KeyUse.JWT, alg="b,c"
    )
