"""Encryption at rest of private keys (AES-256-GCM under a master key).

A stored private key is ``VERSION || nonce (96 bits) || AES-256-GCM(PKCS#8 DER)``.
The associated data binds the ciphertext to its row (``kid``, ``use``, ``alg``):
a ciphertext copied onto another row, or altered by one bit, does not decrypt.
"""

from __future__ import annotations

import base64
import json
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys.errors import InvalidKey, KeysError
from keys.model import KeyUse, PrivateKey, thumbprint

MASTER_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
#: First byte of every blob; lets a later format coexist with this one.
FORMAT_VERSION = b"\x01"
_AD_LABEL = "interops-idp/private-key/v1"
_MASTER_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")


class KeyDecryptionError(KeysError):
    """A stored private key could not be decrypted (wrong master key, tampering, swap)."""


class MasterKey:
    """The AES-256 key that encrypts every stored private key.

    Its text form (``IDP_MASTER_KEY``) is the base64url encoding of 32 random
    bytes. The raw key never appears in ``repr`` or in error messages.
    """

    __slots__ = ("_aead", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != MASTER_KEY_BYTES:
            raise InvalidKey(f"a master key is exactly {MASTER_KEY_BYTES} bytes")
        self._raw = bytes(raw)
        self._aead = AESGCM(self._raw)

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random master key (from the operating system's CSPRNG)."""
        return cls(os.urandom(MASTER_KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """Parse ``IDP_MASTER_KEY``: base64url of 32 bytes, padding optional.

        Surrounding whitespace (a trailing newline in a file) is ignored; anything
        else raises :class:`~keys.errors.InvalidKey` (a ``ValueError``) that does not repeat
        the value.
        """
        value = text.strip()
        if not _MASTER_KEY_TEXT.fullmatch(value):
            raise InvalidKey(
                "IDP_MASTER_KEY must be the base64url encoding of 32 random bytes "
                "(43 characters A-Z a-z 0-9 - _); generate one with MasterKey.generate()"
            )
        return cls(base64.urlsafe_b64decode(value.rstrip("=") + "="))

    def to_text(self) -> str:
        """The ``IDP_MASTER_KEY`` text form (43 characters, no padding)."""
        return base64.urlsafe_b64encode(self._raw).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:
        return "MasterKey(<secret>)"

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> bytes:
        """AES-256-GCM with a fresh random 96-bit nonce; returns the versioned blob."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, FORMAT_VERSION + associated_data)
        return FORMAT_VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, associated_data: bytes) -> bytes:
        """Open a blob made by :meth:`encrypt` with the same associated data.

        Stops tampering, truncation and ciphertext swaps between rows: any
        change raises :class:`KeyDecryptionError`.
        """
        if len(blob) < 1 + NONCE_BYTES + TAG_BYTES or blob[:1] != FORMAT_VERSION:
            raise KeyDecryptionError("stored private key is truncated or of an unknown format")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, FORMAT_VERSION + associated_data)
        except InvalidTag:
            raise KeyDecryptionError(
                "stored private key does not decrypt: wrong IDP_MASTER_KEY, "
                "or the ciphertext was altered or moved to another key row"
            ) from None


def associated_data(*, kid: str, use: KeyUse, alg: str) -> bytes:
    """The AEAD associated data of a key row: an unambiguous encoding of kid, use, alg."""
    return json.dumps([_AD_LABEL, kid, use.value, alg]).encode("utf-8")


def encrypt_private_key(
    private_key: PrivateKey, *, kid: str, use: KeyUse, alg: str, master_key: MasterKey
) -> bytes:
    """Encrypt the unencrypted PKCS#8 DER of ``private_key`` for the row (kid, use, alg)."""
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return master_key.encrypt(der, associated_data=associated_data(kid=kid, use=use, alg=alg))


def decrypt_private_key(
    blob: bytes, *, kid: str, use: KeyUse, alg: str, master_key: MasterKey
) -> PrivateKey:
    """Decrypt a row's private key and check that its thumbprint is the row's ``kid``.

    Stops a wrong master key, altered ciphertexts and ciphertexts moved between
    rows (all raise :class:`KeyDecryptionError`).
    """
    der = master_key.decrypt(blob, associated_data=associated_data(kid=kid, use=use, alg=alg))
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, PrivateKey) or _kid_of(key) != kid:
        raise KeyDecryptionError(f"stored private key does not match its kid {kid!r}")
    return key


def _kid_of(key: PrivateKey) -> str | None:
    try:
        return thumbprint(key.public_key())
    except ValueError:  # an EC curve other than P-256
        return None
