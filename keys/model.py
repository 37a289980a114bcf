"""Signing key model shared by the keyring, the token suite and the stores.

A :class:`SigningKey` is an in-memory, already-decrypted key. It never leaves
the process in clear: stores keep it encrypted (see :mod:`keys.crypto`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from keys.errors import InvalidKey

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyUse(StrEnum):
    """What a key signs: SAML documents (jetons, metadata) or JWTs."""

    SAML = "saml"
    JWT = "jwt"


class KeyState(StrEnum):
    """Rotation states, in the order a key goes through them."""

    NEXT = "next"  # published, not yet signing
    ACTIVE = "active"  # signs
    RETIRING = "retiring"  # published until every token it signed has expired
    RETIRED = "retired"  # neither signs nor is published


#: Algorithms a key may be created for, per use.
ALGORITHMS: dict[KeyUse, tuple[str, ...]] = {
    KeyUse.SAML: ("RS256", "ES256"),
    KeyUse.JWT: ("ES256", "RS256", "PS256"),
}


def _b64u_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64u_fixed(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode("ascii")


def public_jwk_members(public_key: PublicKey) -> dict[str, str]:
    """The required public members of a JWK (RFC 7517/7518), nothing else."""
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {"kty": "RSA", "n": _b64u_uint(numbers.n), "e": _b64u_uint(numbers.e)}
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
        public_key.curve, ec.SECP256R1
    ):
        point = public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64u_fixed(point.x, 32),
            "y": _b64u_fixed(point.y, 32),
        }
    raise InvalidKey("unsupported public key type (RSA or EC P-256 only)")


def thumbprint(public_key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the key id of every key."""
    members = public_jwk_members(public_key)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A decrypted key with its rotation metadata.

    ``kid`` is always the RFC 7638 thumbprint of the public key. ``certificate``
    is the self-signed X.509 certificate published in SAML metadata (present for
    SAML keys, optional for JWT keys).
    """

    kid: str
    use: KeyUse
    alg: str
    state: KeyState
    private_key: PrivateKey
    created_at: datetime
    certificate: x509.Certificate | None = None
    activated_at: datetime | None = None
    retiring_at: datetime | None = None
    #: while RETIRING: published until this instant (last token it signed expired)
    publish_until: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public JWK with ``kid``, ``alg`` and ``use`` = ``sig``."""
        jwk = public_jwk_members(self.public_key)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with the key's JOSE algorithm (raw R||S for ES256)."""
        key = self.private_key
        if self.alg == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey):
            from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "PS256" and isinstance(key, rsa.RSAPrivateKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return key.sign(data, pss, hashes.SHA256())
        raise InvalidKey(f"key {self.kid} cannot sign with {self.alg}")
