"""Interops-R JWT: issue and verify the JWS compact identity vector.

``issue`` assembles the JWS around the signer's signature: header segment cached
per ``(kid, alg, typ)``, all claims serialised in one ``orjson`` call, ``jti``
drawn from ``os.urandom`` 256 at a time. ``verify`` applies the checks of
docs/profile.md ("Contrôles de vérification") in order, the first failure deciding the error:

1. present (:class:`SecurityTokenUnavailable`), at most ``max_size`` bytes, three
   canonical base64url segments, header and payload JSON objects without
   duplicate members (:class:`InvalidSecurityToken`);
2. header: ``alg`` in ES256/RS256/PS256 and equal to the ``alg`` published for
   the ``kid``; ``jku``, ``x5u``, ``jwk``, ``x5c``, ``crit``, ``b64``, ``zip``
   refused; ``kid`` looked up only in ``trust.jwt_keys``; ``typ`` when asked;
   then the signature (:class:`FailedCheck`). The signed claims must then have
   their Interops types: ``iss``, ``sub``, ``aud``, ``jti`` present strings,
   ``pagm``, ``habilitations``, names... well typed (:class:`InvalidSecurityToken`);
3. ``exp`` and ``iat`` required NumericDates (a token without ``exp`` has no
   validity window, so it fails here), ``nbf`` and ``iat`` <= now + skew,
   now - skew < ``exp`` (:class:`InvalidVI`);
4. ``audience`` equal to ``aud`` or one of its values (:class:`InvalidService`);
5. ``iss`` equal to the trusted issuer (:class:`InvalidIssuer`);
6. ``acr`` at least ``min_acr`` in :data:`ACR_LEVELS` (:class:`InvalidAuthLevel`);
7. ``pagm`` non-empty and every value in ``known_pagm`` (:class:`InvalidPagm`);
8. ``jti`` not seen before ``exp`` + skew (:class:`Replay`).

JWS plumbing: :mod:`token_suite._jws` (lean paths, docs/architecture.md "Règles du code" 5).
The identity vector of a verified payload is built through its constructor by
:func:`py_vector`, the one parser, in :mod:`token_suite._claims` (no claim rule in C).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, NoReturn

import orjson

from keys.model import SigningKey
from token_suite import _jws
from token_suite._claims import MAX_TIMESTAMP as _MAX_TIMESTAMP
from token_suite._claims import NUMBER_TYPES as _NUMBER_TYPES
from token_suite._claims import py_vector
from token_suite.errors import (
    FailedCheck,
    InteropsError,
    InvalidAuthLevel,
    InvalidIssuer,
    InvalidPagm,
    InvalidService,
    InvalidVI,
    Replay,
    unexpected,
)
from token_suite.replay import DEFAULT_REPLAY_CACHE, InMemoryReplayCache, ReplayCache
from token_suite.trust import TrustAnchor, trust_from_jwks
from token_suite.vector import ACR_LEVELS, ACR_PASSWORD, ACR_TOTP, IdentityVector

__all__ = [
    "ALGORITHMS",
    "DEFAULT_REPLAY_CACHE",
    "MAX_LIFETIME",
    "MAX_SIZE",
    "issue",
    "trust_from_jwks",
    "verify",
]

#: The only signature algorithms issued or accepted (no ``none``, no HMAC).
ALGORITHMS: frozenset[str] = frozenset({"ES256", "RS256", "PS256"})
DEFAULT_LIFETIME = timedelta(minutes=5)
#: Longest lifetime per (normalised) ``typ``: access tokens 15 minutes, others 5.
MAX_LIFETIME: Mapping[str, timedelta] = {"at+jwt": timedelta(minutes=15)}
DEFAULT_SKEW = timedelta(seconds=60)
_DEFAULT_SKEW_S = DEFAULT_SKEW.total_seconds()
MAX_SIZE = 16 * 1024
#: Header members refused: keys or key URLs carried by the token, extensions, JWS variants.
FORBIDDEN_HEADERS: frozenset[str] = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64", "zip"})
#: Claims ``issue`` sets itself; ``extra_claims`` may not name them.
CORE_CLAIMS: frozenset[str] = frozenset(
    {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "auth_time", "acr", "amr", "siret"}
    | {"pagm", "habilitations", "given_name", "family_name", "email"}
)
#: ``amr`` per ``acr`` (IdentityVector.amr); any other ``acr`` (a machine, a partner's
#: assertion) authenticated no person here: empty ``amr``. Written as JSON arrays.
_AMR_BY_ACR: dict[str, tuple[str, ...]] = {ACR_TOTP: ("pwd", "otp"), ACR_PASSWORD: ("pwd",)}
_ZERO = timedelta(0)
#: The latest instant a ``datetime`` holds, given to a replay cache for later expiries.
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_END_OF_TIME_S = _END_OF_TIME.timestamp()
_utc = partial(datetime.fromtimestamp, tz=UTC)


# --------------------------------------------------------------------------- issue


def issue(
    vector: IdentityVector,
    *,
    signer: SigningKey,
    issuer: str,
    audience: str | list[str],
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    typ: str | None = "JWT",
    jti: str | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``vector`` for ``audience`` as a JWS compact token.

    Emits exactly the profile's claims (``auth_time``, names, ``email``,
    ``siret``, ``pagm``, ``habilitations`` only when set: data minimisation is
    the caller's, on ``vector``). ``extra_claims`` (``nonce``, ``azp``, ``sid``,
    ``client_id``, ``scope``, ``act``...) are appended but may not name a core
    claim (``ValueError``: they never override). Lifetime is capped: 15 minutes
    for ``at+jwt``, 5 for navigation and ID tokens (``ValueError`` beyond).
    ``typ=None`` issues a header without ``typ``.
    """
    entry = _ISSUING.get((id(signer), typ, lifetime))
    if entry is None or entry[0] is not signer:
        entry = _issuing(signer, typ, lifetime)
    if now.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    iat = int(now.timestamp())
    if type(audience) is not str or not audience:
        audience = _checked_audience(audience)
    payload = _payload(vector, issuer, audience, iat, iat + entry[3], jti)
    if extra_claims:
        payload = payload[:-1] + b"," + _extra_json(extra_claims)[1:]
    return entry[2](entry[1], payload)


#: The signing key (kept, so that its id stays its own), the ``header.`` prefix, the
#: function that signs and assembles the token, and the lifetime in seconds.
_Issuing = tuple[SigningKey, bytes, _jws.Compact, int]
#: Per ``(id(key), typ, lifetime)``: what :func:`_issuing` returns (at most 256, then afresh).
_ISSUING: dict[tuple[int, str | None, timedelta], _Issuing] = {}
_MAX_ISSUING = 256


def _issuing(signer: SigningKey, typ: str | None, lifetime: timedelta) -> _Issuing:
    """Checked and built once per key, ``typ`` and lifetime, then read from :data:`_ISSUING`."""
    seconds = _lifetime_seconds(lifetime, typ)
    if signer.alg not in ALGORITHMS:
        raise ValueError(f"signing algorithm {signer.alg!r} not allowed")
    prefix = _jws.header_segment(signer.kid, signer.alg, typ) + b"."
    entry = (signer, prefix, _jws.compact_for(signer), seconds)
    if len(_ISSUING) >= _MAX_ISSUING:
        _ISSUING.clear()
    _ISSUING[(id(signer), typ, lifetime)] = entry
    return entry


def _lifetime_seconds(lifetime: timedelta, typ: str | None) -> int:
    """Whole seconds of an allowed lifetime for ``typ``."""
    if not _ZERO < lifetime <= MAX_LIFETIME.get(_normalise_typ(typ) or "", DEFAULT_LIFETIME):
        raise ValueError(f"lifetime {lifetime} not allowed for typ {typ!r}")
    return int(lifetime.total_seconds())


def _timestamp(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return int(moment.timestamp())


def _payload(
    vector: IdentityVector,
    issuer: str,
    audience: str | list[str],
    iat: int,
    exp: int,
    jti: str | None,
) -> bytes:
    """The claims as JSON, in one ``orjson`` call: this token's own (``iss``, ``aud``,
    times, ``jti``), then the vector's in their order, optional ones only when set.

    ``habilitations`` stay :class:`Habilitation` dataclasses: ``orjson`` writes
    each as ``{"service","siret","role"}`` (:meth:`Habilitation.as_claim`, tested).
    """
    acr = vector.acr
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": jti or _fresh_jti(),
        "sub": vector.subject,
        "acr": acr,
        "amr": _AMR_BY_ACR.get(acr, ()),  # IdentityVector.amr
    }
    if vector.auth_time is not None:
        claims["auth_time"] = _timestamp(vector.auth_time)
    if vector.siret is not None:
        claims["siret"] = vector.siret
    if vector.given_name is not None:
        claims["given_name"] = vector.given_name
    if vector.family_name is not None:
        claims["family_name"] = vector.family_name
    if vector.email is not None:
        claims["email"] = vector.email
    if vector.pagm:
        claims["pagm"] = vector.pagm
    if vector.habilitations:
        claims["habilitations"] = vector.habilitations
    return _dumps(claims)


#: Fresh ``jti`` values, drawn 256 at a time from ``os.urandom`` (one system call
#: instead of 256); taken by ``list.pop``, atomic, so no two threads get the same one.
_JTIS: list[str] = []
_JTI_BATCH = 256


def _fresh_jti() -> str:
    """128 bits from ``os.urandom``, in hex."""
    try:
        return _JTIS.pop()
    except IndexError:
        pool = os.urandom(16 * _JTI_BATCH)
        _JTIS.extend([pool[at : at + 16].hex() for at in range(16, len(pool), 16)])
        return pool[:16].hex()


# A forked worker must not issue the IDs its parent still holds.
os.register_at_fork(after_in_child=_JTIS.clear)


def _dumps(claims: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, written once by ``orjson``: the spelling verify() reads fastest.

    Equal to ``json.dumps(claims, separators=(",", ":"), ensure_ascii=False)``
    (tested); text that is not valid Unicode is refused (``ValueError``).
    """
    try:
        return orjson.dumps(claims)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"claims cannot be written as JSON: {exc}") from exc


def _checked_audience(audience: Any) -> list[str]:
    """What :func:`issue` did not take as a non-empty string: a non-empty list of them."""
    if isinstance(audience, list) and audience and all(isinstance(a, str) and a for a in audience):
        return audience
    raise ValueError("audience must be a non-empty string or list of strings")


def _extra_json(extra: Mapping[str, Any]) -> bytes:
    if not all(isinstance(name, str) for name in extra):
        raise ValueError("extra_claims names must be strings")
    clash = CORE_CLAIMS.intersection(extra)
    if clash:
        raise ValueError(f"extra_claims may not override core claims: {sorted(clash)}")
    text = json.dumps(dict(extra), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "strict")


# -------------------------------------------------------------------------- verify


def verify(
    token: str | bytes,
    *,
    trust: TrustAnchor,
    audience: str,
    issuer: str | None = None,
    now: datetime | None = None,
    skew: timedelta = DEFAULT_SKEW,
    replay: ReplayCache | None = None,
    min_acr: str | None = None,
    known_pagm: Collection[str] | None = None,
    typ: str | None = None,
    max_size: int = MAX_SIZE,
) -> IdentityVector:
    """Verify an Interops-R JWT; return the identity vector it signs, or raise.

    Stops: ``alg: none`` and HMAC-with-the-public-key confusion, algorithm
    substitution (the ``alg`` must be the one published for the ``kid``), keys
    or key URLs carried in the header, forged, tampered or re-encoded tokens,
    expired tokens, tokens for another service or from another issuer, too weak
    an authentication, foreign PAGM, and replay. ``issuer`` (or
    ``trust.issuer``) is required (``ValueError``). With ``replay=None`` the
    process-wide :data:`DEFAULT_REPLAY_CACHE` is used; it expires IDs on the wall
    clock, so callers verifying with a ``now=`` far from it pass their own cache. The vector holds only
    signed values (``acr`` defaults to the lowest level when absent); ``claims``
    is the whole signed payload.

    Whatever ``token`` holds, only an :class:`InteropsError` escapes: any other
    exception is a defect, logged with the token's SHA-256 (never the token) and
    raised as :class:`~token_suite.errors.InvalidSecurity` (:func:`token_suite.errors.unexpected`).
    The arguments are checked first and keep their ``ValueError``.
    """
    expected_issuer = _expected_issuer(issuer, trust)
    min_level = None if min_acr is None else _acr_level(min_acr)
    now_ts = time.time() if now is None else _aware(now).timestamp()
    skew_s = _DEFAULT_SKEW_S if skew is DEFAULT_SKEW else skew.total_seconds()
    try:
        header, payload, signing_input, signature = _jws.parse(token, max_size)  # 1
        if not _header_verifier(header, trust, typ)(signing_input, signature):  # 2
            raise FailedCheck("signature does not verify")
        vector = py_vector(payload)  # names the first ill-typed claim
        exp = _check_window(payload, now_ts, skew_s)  # 3
        aud = payload["aud"]
        if audience != aud and (type(aud) is not list or audience not in aud):  # 4
            raise InvalidService("token audience is not this service")
        if payload["iss"] != expected_issuer:  # 5
            raise InvalidIssuer("issuer is not the trusted operator")
        if min_level is not None:
            _check_acr(vector.acr, min_level)  # 6
        if known_pagm is not None:
            _check_pagm(vector.pagm, known_pagm)  # 7
        cache = DEFAULT_REPLAY_CACHE if replay is None else replay
        _check_replay(cache, payload["jti"], exp + skew_s)  # 8
    except InteropsError:
        raise
    except Exception as exc:  # noqa: BLE001 - the documented boundary (errors.unexpected)
        raise unexpected(exc, "jwt.verify", token) from None
    return vector


def _expected_issuer(issuer: str | None, trust: TrustAnchor) -> str:
    if issuer is None:
        if trust.issuer is None:
            raise ValueError("verify() needs issuer= or a Trust with an issuer")
        return trust.issuer
    if trust.issuer is not None and issuer != trust.issuer:
        raise ValueError("issuer= differs from the trust anchor's issuer")
    return issuer


def _acr_level(min_acr: str) -> int:
    if min_acr not in ACR_LEVELS:
        raise ValueError(f"unknown authentication level {min_acr!r}")
    return ACR_LEVELS.index(min_acr)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment


def _header_verifier(header: dict[str, Any], anchor: TrustAnchor, typ: str | None) -> _jws.Verifier:
    """Check 2 (header): stops ``none``/HMAC/algorithm confusion and token-chosen keys."""
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise FailedCheck(f"algorithm {alg!r} not allowed")
    if not FORBIDDEN_HEADERS.isdisjoint(header):
        refused = sorted(FORBIDDEN_HEADERS.intersection(header))
        raise FailedCheck(f"header members refused: {refused}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise FailedCheck("unknown key id")
    trust = anchor.for_jwt(kid)
    if kid not in trust.jwt_keys:
        raise FailedCheck("unknown key id")
    if trust.jwt_algs.get(kid) != alg:
        raise FailedCheck("algorithm differs from the one published for this key")
    if typ is not None and _normalise_typ(header.get("typ")) != _normalise_typ(typ):
        raise FailedCheck("unexpected token type")
    try:
        return _jws.verifier_for(trust.jwt_keys[kid], alg)
    except ValueError as exc:
        raise FailedCheck("published key does not fit its algorithm") from exc


def _normalise_typ(typ: Any) -> str | None:
    """``typ`` compared case-insensitively, ``application/`` optional (RFC 7515 4.1.9)."""
    return typ.lower().removeprefix("application/") if isinstance(typ, str) else None


def _check_window(payload: dict[str, Any], now: float, skew: float) -> int:
    """Check 3; returns ``exp``. Stops expired, premature and undated tokens.

    ``exp`` is truncated to whole seconds (as PyJWT does), which only shortens
    the window; ``nbf`` and ``iat`` are compared exactly.
    """
    get = payload.get
    exp: Any = get("exp")
    iat: Any = get("iat")
    nbf: Any = get("nbf") if "nbf" in payload else iat
    if not (
        type(exp) in _NUMBER_TYPES
        and type(iat) in _NUMBER_TYPES
        and type(nbf) in _NUMBER_TYPES
        and -_MAX_TIMESTAMP <= exp <= _MAX_TIMESTAMP
        and -_MAX_TIMESTAMP <= iat <= _MAX_TIMESTAMP
        and -_MAX_TIMESTAMP <= nbf <= _MAX_TIMESTAMP
    ):
        _raise_date_error(payload)
    if nbf > now + skew or iat > now + skew:
        raise InvalidVI("token not yet valid")
    if int(exp) <= now - skew:
        raise InvalidVI("token expired")
    return int(exp)


def _raise_date_error(payload: dict[str, Any]) -> NoReturn:
    """The first bad date: not a JSON number (``bool`` is not one), or past year 9999.

    The range check also refuses NaN and infinities.
    """
    names = ("exp", "iat", "nbf") if "nbf" in payload else ("exp", "iat")
    name, value = next((n, payload.get(n)) for n in names if not _is_date(payload.get(n)))
    if type(value) not in _NUMBER_TYPES:
        raise InvalidVI(f"claim {name} missing or not a NumericDate")
    raise InvalidVI(f"claim {name} out of range")


def _is_date(value: Any) -> bool:
    return type(value) in _NUMBER_TYPES and -_MAX_TIMESTAMP <= value <= _MAX_TIMESTAMP


def _check_acr(acr: str, min_level: int) -> None:
    """Check 6: stops a password-only session reaching a second-factor service."""
    if acr not in ACR_LEVELS or ACR_LEVELS.index(acr) < min_level:
        raise InvalidAuthLevel("authentication level too low for this service")


def _check_pagm(pagm: tuple[str, ...], known_pagm: Collection[str]) -> None:
    """Check 7: stops rights meant for another service (not run for identity-only services)."""
    if not pagm:
        raise InvalidPagm("no PAGM for this service")
    if not all(code in known_pagm for code in pagm):
        raise InvalidPagm("PAGM unknown to this service")


def _check_replay(cache: ReplayCache, jti: str, until: float) -> None:
    """Check 8: remembered until ``exp`` + skew, the last instant it could still pass.

    The in-memory cache takes the POSIX instant as is; other caches a ``datetime``,
    at the latest ``datetime.max`` (an ``exp`` of 9999-12-31T23:59:59Z plus the skew
    never overflows: it is remembered until the end of time).
    """
    if isinstance(cache, InMemoryReplayCache):
        seen = cache.seen_until(jti, until)
    else:
        expires_at = _END_OF_TIME if until >= _END_OF_TIME_S else _utc(until)
        seen = cache.seen(jti, expires_at=expires_at)
    if seen:
        raise Replay("token ID already presented")
