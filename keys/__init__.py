"""Signing keys: generation, encrypted storage, rotation, JWKS and certificates.

Standalone: no Flask, no database (the SQLAlchemy store lives in ``rcd_store``).
"""

from keys.crypto import KeyDecryptionError, MasterKey
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
    "JWKSError",
    "KeyDecryptionError",
    "KeyImportError",
    "KeyState",
    "KeyStore",
    "KeyStoreConflict",
    "KeyTransition",
    "KeyUse",
    "Keyring",
    "MasterKey",
    "NoActiveKey",
    "Rotation",
    "SigningKey",
    "StateChange",
    "StoredKey",
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
