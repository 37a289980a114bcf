"""JWS compact serialisation, the low-level part of :mod:`token_suite.jwt` (private).

Lean paths (docs/architecture.md, "Règles du code" 5): PyJWT's decoder spends more time checking
base64 than OpenSSL spends verifying a P-256 signature, so segments are split
and decoded here (long segments by ``pybase64``'s SIMD codec), header segments
are parsed once and cached, and the signature is checked with ``cryptography``
through per-key verifier functions built once. ES256 signatures are moved
between JOSE ``R||S`` and the DER ``cryptography`` speaks by framing bytes
(tested against ``encode_dss_signature`` and ``decode_dss_signature``); the
arithmetic is always OpenSSL's. Everything is stricter than PyJWT (no padding,
canonical base64url, no duplicate JSON members, no NaN) and is tested against
every attack vector and differentially against ``jwt.PyJWT`` (hypothesis).
Signatures are only ever made and checked by ``cryptography``.

The byte framing (split and decode a token, base64url, DER <-> ``R||S``, and
the ES256 sign/verify glue) runs in C, ``token_suite/_speedups.c``, compiled by
``pip install``: next to an OpenSSL P-256 operation, the same steps in Python
cost a third of the signature itself (bench/bench_jwt.py). Each C function has
its Python reference here (``py_*``), used when the module is absent and run
beside it on the same inputs by tests/token_suite/test_speedups.py.

JSON objects are read by ``orjson`` when the bytes are exactly ``orjson``'s own
compact spelling of what it read (the tokens :mod:`token_suite.jwt` issues), and
by the strict standard-library decoder otherwise, so the result is always the
strict decoder's (tested with hypothesis).
"""

from __future__ import annotations

import binascii
import json
import weakref
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import orjson
import pybase64
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from keys.model import PublicKey, SigningKey
from token_suite.errors import InvalidSecurityToken, SecurityTokenUnavailable

try:
    from token_suite import _speedups
except ImportError:  # pragma: no cover - a source tree nobody compiled: Python framing
    _speedups = None  # type: ignore[assignment]
#: The C module (``token_suite._speedups``) when it was built, else ``None``.
SPEEDUPS = _speedups

#: ``verifier(signing_input, signature) -> bool``
Verifier = Callable[[bytes, bytes], bool]
Signer = Callable[[bytes], bytes]
#: ``compact(prefix, payload) -> token``
Compact = Callable[[bytes, bytes], str]

#: The base64url alphabet: a compact token minus these bytes is exactly ``..``.
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_TO_URL = bytes.maketrans(b"+/", b"-_")
_URL_TO_B64 = bytes.maketrans(b"-_", b"+/")
#: From this length on ``pybase64`` (SIMD, fixed cost about a microsecond) beats ``binascii``.
_SIMD_FROM = 256
#: Last characters allowed for a segment of length 2 or 3 mod 4: the unused
#: low bits must be zero, so that each value has exactly one spelling.
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_PKCS1 = padding.PKCS1v15()
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_SHA256 = hashes.SHA256()
_MIN_RSA_BITS = 2048


# ------------------------------------------------------------------ base64 / JSON

#: Why :func:`split` refuses a token that is not three base64url segments.
NOT_COMPACT = "not a JWS compact serialisation"


def py_b64encode(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 section 2); reference of ``_speedups.b64encode``."""
    if len(data) >= _SIMD_FROM:
        return pybase64.b64encode(data, altchars=b"-_").rstrip(b"=")
    return binascii.b2a_base64(data, newline=False).translate(_B64_TO_URL, b"=")


def b64decode(segment: bytes) -> bytes:
    """Strict base64url: alphabet already checked; no padding, canonical last character.

    Raises ``ValueError``. Both codecs decode the checked alphabet identically (tested).
    """
    remainder = len(segment) % 4
    if remainder == 1:
        raise ValueError("bad base64url length")
    if remainder and segment[-1] not in _CANONICAL_LAST[remainder]:
        raise ValueError("non-canonical base64url")
    padded = segment + b"=="[: (4 - remainder) % 4]
    if len(segment) >= _SIMD_FROM:
        return pybase64.b64decode(padded, altchars=b"-_", validate=True)
    return binascii.a2b_base64(padded.translate(_URL_TO_B64))


def py_split(raw: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Header segment, decoded payload, signing input, decoded signature; reference of
    ``_speedups.split``.

    ``ValueError`` (:data:`NOT_COMPACT`) unless exactly three base64url segments
    joined by two dots (so JWS JSON, JWE and non-ASCII forms fail), then
    :func:`b64decode`'s errors, payload first.
    """
    if raw.translate(None, _B64URL_ALPHABET) != b"..":  # non-ASCII UTF-8 bytes stay too
        raise ValueError(NOT_COMPACT)
    header_b64, payload_b64, signature_b64 = raw.split(b".")
    payload = b64decode(payload_b64)
    signing_input = raw[: len(raw) - len(signature_b64) - 1]
    return header_b64, payload, signing_input, b64decode(signature_b64)


def encode_json(value: Any) -> bytes:
    """Compact JSON, ASCII only, refusing NaN and infinities."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Stops duplicate members: two parsers must never read two different tokens."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("duplicate member")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
)


def decode_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes; :class:`InvalidSecurityToken` otherwise.

    Fast path: ``orjson`` keeps the last of duplicate members, so its result is
    only taken when writing it back gives the very same bytes (a dict has no
    duplicates, so neither had the input). ``orjson`` writes nothing nested
    deeper than 254 levels, so whatever the strict decoder might refuse for
    depth also goes to :func:`strict_object`, as does anything else.
    """
    try:
        value = orjson.loads(data)
        if type(value) is dict and orjson.dumps(value) == data:
            return value
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        pass
    return strict_object(data, what)


def strict_object(data: bytes, what: str) -> dict[str, Any]:
    """The standard-library decoder refusing duplicate members, NaN and infinities."""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidSecurityToken(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidSecurityToken(f"{what} is not a JSON object")
    return value


# --------------------------------------------------------------------------- parse


def parse(token: str | bytes, max_size: int) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Check 1: split and decode; returns header, payload, signing input, signature.

    Stops oversized input, non-ASCII or non-base64url characters, JWS JSON and
    JWE forms, non-canonical encodings and non-object JSON. The header's errors
    come first, then the payload's, then the signature's.
    """
    if not token:
        raise SecurityTokenUnavailable("no token")
    if len(token) > max_size:
        raise InvalidSecurityToken("token too large")
    if isinstance(token, str):
        if not token.isascii():
            raise InvalidSecurityToken(NOT_COMPACT)
        token = token.encode("ascii")
    try:
        header_b64, payload, signing_input, signature = split(token)
    except ValueError as exc:
        if str(exc) != NOT_COMPACT:  # a segment's base64: a bad header is named first
            parse_header(token.partition(b".")[0])
        raise InvalidSecurityToken(str(exc)) from None
    header = parse_header(header_b64)
    return header, decode_object(payload, "payload"), signing_input, signature


#: Header members RFC 7515 and RFC 7519 define as strings: each is checked to be one before
#: anything reads it (a list ``alg`` is not hashable, a number ``kid`` is no key id).
TEXT_HEADERS = ("alg", "kid", "typ", "cty")


@lru_cache(maxsize=128)
def parse_header(segment: bytes) -> dict[str, Any]:
    """The decoded header; cached (a few headers per issuer). Never mutate the result.

    Stops ill-typed members: ``alg``, ``kid``, ``typ``, ``cty`` present and not a string
    (any other JSON type, ``null`` included) is :class:`InvalidSecurityToken` (check 1).
    """
    try:
        data = b64decode(segment)
    except ValueError as exc:
        raise InvalidSecurityToken(str(exc)) from None
    header = decode_object(data, "header")
    for name in TEXT_HEADERS:
        if name in header and type(header[name]) is not str:
            raise InvalidSecurityToken(f"header member {name} is not a string")
    return header


@lru_cache(maxsize=256)
def header_segment(kid: str, alg: str, typ: str | None) -> bytes:
    """The encoded protected header ``{"alg","kid","typ"}``, built once per key and type;
    ``typ=None`` leaves ``typ`` out (an OpenID Connect ID token, told apart by it)."""
    header = {"alg": alg, "kid": kid} if typ is None else {"alg": alg, "kid": kid, "typ": typ}
    return b64encode(encode_json(header))


# ------------------------------------------------------------------------ signing


def compact_for(key: SigningKey) -> Compact:
    """``compact(prefix, payload)``: the JWS compact token ``prefix`` + base64url
    payload + signature, as ``str``; built once per key and dropped with it.

    ``prefix`` is the encoded header and its dot. Raises ``ValueError`` for an
    ES256 key that is not on P-256.
    """
    cached = _COMPACTS.get(key)
    if cached is None:
        cached = _COMPACTS[key] = build_compact(key)
    return cached


_COMPACTS: weakref.WeakKeyDictionary[SigningKey, Compact] = weakref.WeakKeyDictionary()


def build_compact(key: SigningKey, native: Any = _speedups) -> Compact:
    """:func:`compact_for`'s function: ES256 through the C framing when ``native``,
    else (and for RSA) in Python around :func:`build_signer`."""
    sign = build_signer(key)
    private_key = key.private_key
    if (
        native is not None
        and key.alg == "ES256"
        and isinstance(private_key, ec.EllipticCurvePrivateKey)
    ):
        compact: Compact = partial(
            native.es256_compact, private_key.sign, _ECDSA_SHA256, der_to_raw
        )
        return compact

    def compact_python(prefix: bytes, payload: bytes) -> str:
        signing_input = prefix + b64encode(payload)
        return (signing_input + b"." + b64encode(sign(signing_input))).decode("ascii")

    return compact_python


def build_signer(key: SigningKey) -> Signer:
    """The key's JOSE signature function: raw R||S for ES256, the key's own otherwise."""
    private_key = key.private_key
    if key.alg != "ES256" or not isinstance(private_key, ec.EllipticCurvePrivateKey):
        return key.sign
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise ValueError("ES256 needs a P-256 key")  # noqa: TRY004 - a bad key, not a bad type

    def sign_es256(data: bytes) -> bytes:
        return der_to_raw(private_key.sign(data, _ECDSA_SHA256))

    return sign_es256


def der_to_raw(der: bytes) -> bytes:
    """The JOSE ``R||S`` (32 + 32 bytes) of a P-256 ECDSA signature made by OpenSSL.

    Every P-256 signature in DER is minimal short-form DER with ``r, s < 2**256``
    (DER allows no other spelling, and 72 bytes need no long-form length), framed by
    :func:`minimal_der_to_raw`; anything else is refused with ``ValueError`` (fail
    closed: only ever used on our own fresh signatures, never on input).
    """
    raw = minimal_der_to_raw(der)
    if raw is None:
        raise ValueError("not a P-256 ECDSA signature in DER")
    return raw


def py_der_to_raw(der: bytes) -> bytes | None:
    """``R||S`` of ``SEQUENCE { INTEGER r, INTEGER s }`` in minimal short-form DER with
    ``0 <= r, s < 2**256``; ``None`` for any other shape. Reference of
    ``_speedups.der_to_raw`` (tested against ``decode_dss_signature``).
    """
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        return None
    halves: list[bytes] = []
    position = 2
    for _ in range(2):
        if position + 2 > len(der) or der[position] != 0x02:
            return None
        size = der[position + 1]
        value = der[position + 2 : position + 2 + size]
        if not 1 <= size <= 33 or len(value) != size:
            return None
        if size == 33:  # a sign byte, only before a 256-bit value with its top bit set
            if value[0] or not value[1] & 0x80:
                return None
            value = value[1:]
        elif value[0] & 0x80 or (size > 1 and not value[0] and not value[1] & 0x80):
            return None  # negative, or a superfluous leading zero
        halves.append(value.rjust(32, b"\0"))
        position += 2 + size
    return halves[0] + halves[1] if position == len(der) else None


def py_raw_to_der(raw: bytes) -> bytes:
    """The DER ``SEQUENCE { INTEGER r, INTEGER s }`` of a 64-byte JOSE ``R||S``.

    Each 32-byte half becomes a minimal DER integer (leading zero bytes dropped,
    one put back when the top bit is set, ``0`` for zero), as
    ``encode_dss_signature`` writes it (tested); a one-to-one framing, so OpenSSL
    still sees and checks exactly the values the token carries. Reference of
    ``_speedups.raw_to_der``; ``ValueError`` unless 64 bytes.
    """
    if len(raw) != 64:
        raise ValueError("raw_to_der() needs 64 bytes")
    r, s = raw[:32].lstrip(b"\0"), raw[32:].lstrip(b"\0")
    if not r or r[0] & 0x80:
        r = b"\0" + r
    if not s or s[0] & 0x80:
        s = b"\0" + s
    return bytes((0x30, len(r) + len(s) + 4, 0x02, len(r))) + r + bytes((0x02, len(s))) + s


#: The C framing when built (``pip install`` compiles it), else the Python reference.
if _speedups is None:  # pragma: no cover - the tests run both on every input
    split, b64encode = py_split, py_b64encode
    minimal_der_to_raw, raw_to_der = py_der_to_raw, py_raw_to_der
else:
    split, b64encode = _speedups.split, _speedups.b64encode
    minimal_der_to_raw, raw_to_der = _speedups.der_to_raw, _speedups.raw_to_der


# ---------------------------------------------------------------------- verifying

_VERIFIERS: dict[tuple[int, str], tuple[PublicKey, Verifier]] = {}
_MAX_VERIFIERS = 256


def verifier_for(key: PublicKey, alg: str) -> Verifier:
    """A signature check for ``key`` with ``alg``, built once per (key, alg).

    Raises ``ValueError`` when the key does not fit the algorithm (an EC key
    published for RS256, a P-384 key for ES256, RSA under 2048 bits): this
    stops key/algorithm confusion.
    """
    entry = _VERIFIERS.get((id(key), alg))
    if entry is not None and entry[0] is key:
        return entry[1]
    verifier = _build_verifier(key, alg)
    if len(_VERIFIERS) >= _MAX_VERIFIERS:
        _VERIFIERS.clear()
    _VERIFIERS[(id(key), alg)] = (key, verifier)  # holding the key keeps its id unique
    return verifier


def _build_verifier(key: PublicKey, alg: str) -> Verifier:
    if alg == "ES256":
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("ES256 needs a P-256 key")
        return _es256_verifier(key)
    if alg not in ("RS256", "PS256"):
        raise ValueError(f"algorithm {alg!r} not supported")
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
        raise ValueError(f"{alg} needs an RSA key of at least {_MIN_RSA_BITS} bits")
    return _rsa_verifier(key, _PKCS1 if alg == "RS256" else _PSS)


def _es256_verifier(key: ec.EllipticCurvePublicKey, native: Any = _speedups) -> Verifier:
    """``verify(signing_input, raw R||S)``: OpenSSL checks the DER framing of the 64 bytes."""
    if native is not None:
        verifier: Verifier = partial(
            native.es256_check, key.verify, _ECDSA_SHA256, InvalidSignature
        )
        return verifier

    def verify_es256(data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:  # raw R||S only: DER or truncated signatures fail
            return False
        try:
            key.verify(raw_to_der(signature), data, _ECDSA_SHA256)
        except InvalidSignature:
            return False
        return True

    return verify_es256


def _rsa_verifier(key: rsa.RSAPublicKey, pad: padding.AsymmetricPadding) -> Verifier:
    """``verify(signing_input, signature)``: the signature must be exactly as long as the
    modulus (RFC 8017 8.1.2 and 8.2.2, step 1), which OpenSSL does not enforce for PSS: a
    signature has one spelling, its leading zero bytes included."""
    size = (key.key_size + 7) // 8

    def verify_rsa(data: bytes, signature: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            key.verify(signature, data, pad, _SHA256)
        except InvalidSignature:
            return False
        return True

    return verify_rsa
