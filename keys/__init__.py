"""Signing keys: generation, encrypted storage, rotation, JWKS and certificates.

Standalone: no Flask, no database (the SQLAlchemy store lives in ``rcd_store``).
"""

from keys.model import ALGORITHMS, KeyState, KeyUse, SigningKey, thumbprint

__all__ = ["ALGORITHMS", "KeyState", "KeyUse", "SigningKey", "thumbprint"]
