"""JWKS: publishing our public keys, and reading a JWKS into public keys.

Reading is strict: a JWKS is a trust anchor, so anything ambiguous (private
members, unknown key types or curves, an algorithm foreign to the key, a kid
that could be used as a path, duplicate kids) is refused rather than guessed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keys.errors import InvalidKey, KeysError
from keys.model import PublicKey, SigningKey, thumbprint

#: JWK members that carry private or symmetric key material (RFC 7518 section 6).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k", "r", "t"})
MAX_KID_LENGTH = 128
MAX_KEYS = 64
MIN_RSA_BITS = 2048
_ALGS = {"RSA": ("RS256", "PS256"), "EC": ("ES256",)}
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class JWKSError(KeysError, ValueError):
    """A JWKS that cannot be trusted as it is; the message says which key and why."""


def jwks(keys: Iterable[SigningKey]) -> dict[str, list[dict[str, Any]]]:
    """The public JWKS of ``keys``: kid (RFC 7638 thumbprint), alg, use=sig, x5c.

    Only public members are written; a key whose kid is not its thumbprint, or
    whose certificate is for another key, is refused (:class:`~keys.errors.InvalidKey`,
    a ``ValueError``).
    """
    return {"keys": [_public_jwk(key) for key in keys]}


def _public_jwk(key: SigningKey) -> dict[str, Any]:
    if key.kid != thumbprint(key.public_key):
        raise InvalidKey(f"kid {key.kid!r} is not the thumbprint of its key")
    jwk: dict[str, Any] = dict(key.public_jwk())
    if key.certificate is not None:
        if key.certificate.public_key() != key.public_key:
            raise InvalidKey(f"certificate of key {key.kid!r} is for another key")
        der = key.certificate.public_bytes(serialization.Encoding.DER)
        jwk["x5c"] = [base64.b64encode(der).decode("ascii")]
    return jwk


def public_keys_from_jwks(data: Mapping[str, Any]) -> dict[str, tuple[str, PublicKey]]:
    """Read a JWKS into ``{kid: (alg, public key)}`` for signature verification.

    Keys marked for another use (``use`` other than ``sig``) are skipped. Stops:
    private key material published by mistake, HMAC (``oct``) keys and unknown
    types or curves (algorithm confusion), RSA keys under 2048 bits, EC points
    off the curve, an ``alg`` foreign to the key type, ``x5c`` for another key,
    duplicate kids, and kids unsafe as file or cache names. A kid need not be
    the thumbprint (foreign JWKS); a missing kid becomes the thumbprint.
    """
    entries = data.get("keys") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise JWKSError("a JWKS is a JSON object with a list under 'keys'")
    if len(entries) > MAX_KEYS:
        raise JWKSError(f"a JWKS may hold at most {MAX_KEYS} keys")
    result: dict[str, tuple[str, PublicKey]] = {}
    for index, entry in enumerate(entries):
        parsed = _read_entry(entry, index)
        if parsed is None:
            continue
        kid, alg, key = parsed
        if kid in result:
            raise JWKSError(f"kid {kid!r} appears twice")
        result[kid] = (alg, key)
    if not result:
        raise JWKSError("the JWKS holds no signature key")
    return result


def _read_entry(entry: Any, index: int) -> tuple[str, str, PublicKey] | None:
    if not isinstance(entry, Mapping):
        raise JWKSError(f"key #{index} is not a JSON object")
    private = PRIVATE_MEMBERS.intersection(entry)
    if private:
        raise JWKSError(f"key #{index} contains private members {sorted(private)}: refused")
    if not _for_signature(entry):
        return None
    key = _public_key(entry, index)
    alg = _alg(entry, key, index)
    kid = entry["kid"] if "kid" in entry else thumbprint(key)
    check_kid(kid)
    _check_x5c(entry, key, kid)
    return kid, alg, key


def _for_signature(entry: Mapping[str, Any]) -> bool:
    key_ops = entry.get("key_ops", ["verify"])
    return entry.get("use", "sig") == "sig" and isinstance(key_ops, list) and "verify" in key_ops


def check_kid(kid: Any) -> None:
    """Refuse a kid unsafe as a file, URL or cache name (``JWKSError``).

    Stops path traversal and header injection through a kid: at most 128
    characters, no ``/``, ``\\``, ``..``, NUL or other control characters.
    """
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
        raise JWKSError(f"kid must be a string of 1 to {MAX_KID_LENGTH} characters")
    if (
        "/" in kid
        or "\\" in kid
        or ".." in kid
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in kid)
    ):
        raise JWKSError(f"kid {kid!r} contains '/', '\\', '..' or a control character")


def _public_key(entry: Mapping[str, Any], index: int) -> PublicKey:
    kty = entry.get("kty")
    if kty == "RSA":
        n, e = _uint(entry, "n", index), _uint(entry, "e", index)
        if n.bit_length() < MIN_RSA_BITS or e < 3 or e % 2 == 0:
            raise JWKSError(f"key #{index}: RSA keys need 2048 bits or more and an odd e >= 3")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if kty == "EC":
        if entry.get("crv") != "P-256":
            raise JWKSError(f"key #{index}: unsupported curve {entry.get('crv')!r} (P-256 only)")
        x, y = _coordinate(entry, "x", index), _coordinate(entry, "y", index)
        try:
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            raise JWKSError(f"key #{index}: the EC point is not on P-256") from None
    raise JWKSError(f"key #{index}: unsupported kty {kty!r} (RSA or EC only)")


def _alg(entry: Mapping[str, Any], key: PublicKey, index: int) -> str:
    kty = "EC" if isinstance(key, ec.EllipticCurvePublicKey) else "RSA"
    allowed = _ALGS[kty]
    alg = entry.get("alg", allowed[0] if kty == "EC" else None)
    if alg not in allowed:
        raise JWKSError(f"key #{index}: alg must be one of {', '.join(allowed)} for a {kty} key")
    return str(alg)


def _check_x5c(entry: Mapping[str, Any], key: PublicKey, kid: str) -> None:
    chain = entry.get("x5c")
    if chain is None:
        return
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
    except (ValueError, TypeError, LookupError):
        raise JWKSError(f"key {kid!r}: x5c is not a list of base64 DER certificates") from None
    if certificate.public_key() != key:
        raise JWKSError(f"key {kid!r}: the x5c certificate is for another key")


def _b64url(entry: Mapping[str, Any], name: str, index: int) -> bytes:
    value = entry.get(name)
    if not isinstance(value, str) or not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise JWKSError(f"key #{index}: member {name!r} must be base64url without padding")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _uint(entry: Mapping[str, Any], name: str, index: int) -> int:
    return int.from_bytes(_b64url(entry, name, index), "big")


def _coordinate(entry: Mapping[str, Any], name: str, index: int) -> int:
    raw = _b64url(entry, name, index)
    if len(raw) != 32:
        raise JWKSError(f"key #{index}: member {name!r} must be 32 bytes for P-256")
    return int.from_bytes(raw, "big")
