"""Interops-R JWT: issue and verify the JWS compact identity vector.

``issue`` assembles the JWS around the signer's signature: header segment cached
per ``(kid, alg, typ)``, claims serialised once. ``verify`` applies the checks
of INTEROPS_PROFILE.md in order, the first failure deciding the error:

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

The JWS plumbing is in :mod:`token_suite._jws` (lean paths, CONVENTIONS item 16).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _q
from pathlib import Path
from typing import Any

from keys.jwks import public_keys_from_jwks
from keys.model import SigningKey
from token_suite import _jws
from token_suite.errors import (
    FailedCheck,
    InvalidAuthLevel,
    InvalidIssuer,
    InvalidPagm,
    InvalidSecurityToken,
    InvalidService,
    InvalidVI,
    Replay,
)
from token_suite.replay import InMemoryReplayCache, ReplayCache, utc_now
from token_suite.trust import Trust
from token_suite.vector import ACR_LEVELS, Habilitation, IdentityVector

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
MAX_SIZE = 16 * 1024
#: Header members refused: keys or key URLs carried by the token, extensions, JWS variants.
FORBIDDEN_HEADERS: frozenset[str] = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64", "zip"})
#: Claims ``issue`` sets itself; ``extra_claims`` may not name them.
CORE_CLAIMS: frozenset[str] = frozenset(
    {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "auth_time", "acr", "amr", "siret"}
    | {"pagm", "habilitations", "given_name", "family_name", "email"}
)
#: Used when ``verify(replay=None)``: one per process, in memory, wall clock, at
#: most 200,000 live IDs (then it refuses tokens rather than forget one). Several
#: processes or hosts must share a cache (Redis, SQL) passed as ``replay=``.
DEFAULT_REPLAY_CACHE = InMemoryReplayCache(max_entries=200_000)
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z
_ZERO = timedelta(0)


# --------------------------------------------------------------------------- issue


def issue(
    vector: IdentityVector,
    *,
    signer: SigningKey,
    issuer: str,
    audience: str | list[str],
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    typ: str = "JWT",
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
    """
    if not _ZERO < lifetime <= MAX_LIFETIME.get(_normalise_typ(typ) or "", DEFAULT_LIFETIME):
        raise ValueError(f"lifetime {lifetime} not allowed for typ {typ!r}")
    if signer.alg not in ALGORITHMS:
        raise ValueError(f"signing algorithm {signer.alg!r} not allowed")
    iat = _timestamp(now)
    payload = _payload(vector, issuer, audience, iat, iat + int(lifetime.total_seconds()), jti)
    if extra_claims:
        payload = payload[:-1] + "," + _extra_json(extra_claims)[1:]
    header = _jws.header_segment(signer.kid, signer.alg, typ)
    signing_input = header + b"." + _jws.b64encode(payload.encode("ascii"))
    signature = _jws.signer_for(signer)(signing_input)
    return (signing_input + b"." + _jws.b64encode(signature)).decode("ascii")


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
) -> str:
    """The claims as compact JSON, written once.

    Every string goes through the standard library's JSON string encoder
    (``encode_basestring_ascii``), every number is an ``int``: the result is the
    ``json.dumps(..., separators=(",", ":"))`` of the same claims (tested).
    """
    parts = [
        '{"iss":',
        _q(issuer),
        ',"sub":',
        _q(vector.subject),
        ',"aud":',
        _audience_json(audience),
        f',"iat":{iat},"nbf":{iat},"exp":{exp},"jti":',
        _q(jti or secrets.token_urlsafe(16)),
        ',"acr":',
        _q(vector.acr),
        ',"amr":',
        _string_array(vector.amr),
    ]
    if vector.auth_time is not None:
        parts.append(f',"auth_time":{_timestamp(vector.auth_time)}')
    for name, value in (
        ("siret", vector.siret),
        ("given_name", vector.given_name),
        ("family_name", vector.family_name),
        ("email", vector.email),
    ):
        if value is not None:
            parts += (',"', name, '":', _q(value))
    if vector.pagm:
        parts += (',"pagm":', _string_array(vector.pagm))
    if vector.habilitations:
        parts += (',"habilitations":[', ",".join(map(_habilitation_json, vector.habilitations)))
        parts.append("]")
    parts.append("}")
    return "".join(parts)


def _audience_json(audience: str | list[str]) -> str:
    if isinstance(audience, str) and audience:
        return _q(audience)
    if isinstance(audience, list) and audience and all(isinstance(a, str) and a for a in audience):
        return _string_array(audience)
    raise ValueError("audience must be a non-empty string or list of strings")


def _string_array(values: Collection[str]) -> str:
    return "[" + ",".join(map(_q, values)) + "]"


def _habilitation_json(habilitation: Habilitation) -> str:
    service, siret, role = map(_q, (habilitation.service, habilitation.siret, habilitation.role))
    return f'{{"service":{service},"siret":{siret},"role":{role}}}'


def _extra_json(extra: Mapping[str, Any]) -> str:
    if not all(isinstance(name, str) for name in extra):
        raise ValueError("extra_claims names must be strings")
    clash = CORE_CLAIMS.intersection(extra)
    if clash:
        raise ValueError(f"extra_claims may not override core claims: {sorted(clash)}")
    return json.dumps(dict(extra), separators=(",", ":"), allow_nan=False)


# -------------------------------------------------------------------------- verify


def verify(
    token: str | bytes,
    *,
    trust: Trust,
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
    """
    expected_issuer = _expected_issuer(issuer, trust)
    min_level = _acr_level(min_acr)
    now_ts = utc_now().timestamp() if now is None else _aware(now).timestamp()
    skew_s = skew.total_seconds()
    header, payload, signing_input, signature = _jws.parse(token, max_size)  # 1
    if not _header_verifier(header, trust, typ)(signing_input, signature):  # 2
        raise FailedCheck("signature does not verify")
    vector = _vector(payload)
    exp = _check_window(payload, now_ts, skew_s)  # 3
    _check_audience(payload["aud"], audience)  # 4
    if payload["iss"] != expected_issuer:  # 5
        raise InvalidIssuer("issuer is not the trusted operator")
    _check_acr(vector.acr, min_level)  # 6
    _check_pagm(vector.pagm, known_pagm)  # 7
    _check_replay(DEFAULT_REPLAY_CACHE if replay is None else replay, payload["jti"], exp + skew_s)
    return vector


def _expected_issuer(issuer: str | None, trust: Trust) -> str:
    if issuer is None:
        if trust.issuer is None:
            raise ValueError("verify() needs issuer= or a Trust with an issuer")
        return trust.issuer
    if trust.issuer is not None and issuer != trust.issuer:
        raise ValueError("issuer= differs from the trust anchor's issuer")
    return issuer


def _acr_level(min_acr: str | None) -> int | None:
    if min_acr is None:
        return None
    if min_acr not in ACR_LEVELS:
        raise ValueError(f"unknown authentication level {min_acr!r}")
    return ACR_LEVELS.index(min_acr)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment


def _header_verifier(header: dict[str, Any], trust: Trust, typ: str | None) -> _jws.Verifier:
    """Check 2 (header): stops ``none``/HMAC/algorithm confusion and token-chosen keys."""
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise FailedCheck(f"algorithm {alg!r} not allowed")
    refused = FORBIDDEN_HEADERS.intersection(header)
    if refused:
        raise FailedCheck(f"header members refused: {sorted(refused)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in trust.jwt_keys:
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


def _vector(payload: dict[str, Any]) -> IdentityVector:
    """The identity vector of a signed payload; stops ill-typed claims."""
    for name in ("iss", "sub", "jti"):
        if not _is_text(payload.get(name)):
            raise InvalidSecurityToken(f"claim {name} missing or not a string")
    aud = payload.get("aud")
    if not (_is_text(aud) or (isinstance(aud, list) and aud and all(map(_is_text, aud)))):
        raise InvalidSecurityToken("claim aud missing or malformed")
    return IdentityVector(
        subject=payload["sub"],
        siret=_optional_text(payload, "siret"),
        family_name=_optional_text(payload, "family_name"),
        given_name=_optional_text(payload, "given_name"),
        email=_optional_text(payload, "email"),
        pagm=_pagm(payload.get("pagm", [])),
        habilitations=_habilitations(payload.get("habilitations", [])),
        acr=_optional_text(payload, "acr") or ACR_LEVELS[0],
        auth_time=_auth_time(payload.get("auth_time")),
        session_index=_optional_text(payload, "sid"),
        claims=payload,
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _optional_text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidSecurityToken(f"claim {name} is not a string")
    return value


def _pagm(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidSecurityToken("claim pagm is not a list of strings")
    return tuple(value)


def _habilitations(value: Any) -> tuple[Habilitation, ...]:
    if not isinstance(value, list):
        raise InvalidSecurityToken("claim habilitations is not a list")
    try:
        return tuple(map(Habilitation.from_claim, value))
    except ValueError as exc:
        raise InvalidSecurityToken(f"claim habilitations malformed: {exc}") from exc


def _auth_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not _is_number(value) or not 0 <= value <= _MAX_TIMESTAMP:
        raise InvalidSecurityToken("claim auth_time is not a NumericDate")
    return datetime.fromtimestamp(value, UTC)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_window(payload: dict[str, Any], now: float, skew: float) -> int:
    """Check 3; returns ``exp``. Stops expired, premature and undated tokens.

    ``exp`` is truncated to whole seconds (as PyJWT does), which only shortens
    the window; ``nbf`` and ``iat`` are compared exactly.
    """
    exp, iat = _numeric_date(payload, "exp"), _numeric_date(payload, "iat")
    nbf = _numeric_date(payload, "nbf") if "nbf" in payload else iat
    if nbf > now + skew or iat > now + skew:
        raise InvalidVI("token not yet valid")
    if int(exp) <= now - skew:
        raise InvalidVI("token expired")
    return int(exp)


def _numeric_date(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidVI(f"claim {name} missing or not a NumericDate")
    if not -_MAX_TIMESTAMP <= value <= _MAX_TIMESTAMP:  # also refuses NaN and infinities
        raise InvalidVI(f"claim {name} out of range")
    return float(value)


def _check_audience(aud: str | list[str], audience: str) -> None:
    """Check 4: stops a token issued for another service being used here."""
    accepted = audience == aud if isinstance(aud, str) else audience in aud
    if not accepted:
        raise InvalidService("token audience is not this service")


def _check_acr(acr: str, min_level: int | None) -> None:
    """Check 6: stops a password-only session reaching a second-factor service."""
    if min_level is not None and (acr not in ACR_LEVELS or ACR_LEVELS.index(acr) < min_level):
        raise InvalidAuthLevel("authentication level too low for this service")


def _check_pagm(pagm: tuple[str, ...], known_pagm: Collection[str] | None) -> None:
    """Check 7: stops rights meant for another service (``None``: identity-only service)."""
    if known_pagm is None:
        return
    if not pagm:
        raise InvalidPagm("no PAGM for this service")
    if not all(code in known_pagm for code in pagm):
        raise InvalidPagm("PAGM unknown to this service")


def _check_replay(cache: ReplayCache, jti: str, until: float) -> None:
    """Check 8: remembered until ``exp`` + skew, the last instant it could still pass."""
    if cache.seen(jti, expires_at=datetime.fromtimestamp(until, UTC)):
        raise Replay("token ID already presented")


# ---------------------------------------------------------------------------- JWKS


def trust_from_jwks(source: dict[str, Any] | str | Path, *, issuer: str | None = None) -> Trust:
    """Trust the public signature keys of a JWKS (a dict, or a JSON file path).

    Parsing is :func:`keys.jwks.public_keys_from_jwks` (``ValueError``, as
    ``JWKSError``): it refuses private members, HMAC and unknown key types,
    RSA under 2048 bits, an ``alg`` foreign to the key, RSA keys without
    ``alg``, duplicate kids and kids unsafe as names; keys for another use are
    skipped. Each kid keeps the ``alg`` it was published for (check 2).
    """
    document = source if isinstance(source, dict) else json.loads(Path(source).read_text("utf-8"))
    published = public_keys_from_jwks(document)
    return Trust(
        issuer=issuer,
        jwt_keys={kid: key for kid, (_, key) in published.items()},
        jwt_algs={kid: alg for kid, (alg, _) in published.items()},
    )
