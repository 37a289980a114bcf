"""Signing keys: generation, encrypted storage, rotation, JWKS and certificates.

Standalone: no Flask, no database (the application brings its SQL :class:`KeyStore`).
Every error raised to a caller is a :class:`KeysError`.
"""

from keys.crypto import KeyDecryptionError, MasterKey
from keys.errors import InvalidKey, KeysError, UnknownKey
from keys.generate import generate_key
from keys.io import KeyImportError, export_pem, export_pkcs12, import_pem, import_pkcs12
from keys.jwks import JWKSError, jwks, public_keys_from_jwks
from keys.keyring import (
    DEFAULT_MARGIN,
    Keyring,
    KeyTransition,
    NoActiveKey,
    Rotation,
    check_signing_key,
)
from keys.model import ALGORITHMS, KeyState, KeyUse, SigningKey, thumbprint
from keys.store import InMemoryKeyStore, KeyStore, KeyStoreConflict, StateChange, StoredKey

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MARGIN",
    "InMemoryKeyStore",
    "InvalidKey",
    "JWKSError",
    "KeyDecryptionError",
    "KeyImportError",
    "KeyState",
    "KeyStore",
    "KeyStoreConflict",
    "KeyTransition",
    "KeyUse",
    "Keyring",
    "KeysError",
    "MasterKey",
    "NoActiveKey",
    "Rotation",
    "SigningKey",
    "StateChange",
    "StoredKey",
    "UnknownKey",
    "check_signing_key",
    "export_pem",
    "export_pkcs12",
    "generate_key",
    "import_pem",
    "import_pkcs12",
    "jwks",
    "public_keys_from_jwks",
    "thumbprint",
]
