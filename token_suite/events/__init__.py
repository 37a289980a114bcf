"""Security Event Tokens (RFC 8417) and OpenID Connect logout tokens: sign, and verify on
the receiver's side into a typed event.

The operator pushes a SET (``typ: secevent+jwt``) to each partner that shares a service
with the declarant it is about (RFC 8935), and a logout token (``typ: logout+jwt``,
OpenID Connect Back-Channel Logout 1.0) to each relying party of a session that ends.
Both are JWS compact tokens signed and checked by the machinery of :mod:`token_suite.jwt`
(same algorithms, same header rules, same published keys): nothing is hand-rolled here.
Standalone: no Flask, no database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from keys.model import SigningKey
from token_suite import _jws
from token_suite._claims import MAX_TIMESTAMP as _MAX_TIMESTAMP
from token_suite.errors import (
    FailedCheck,
    InteropsError,
    InvalidIssuer,
    InvalidSecurityToken,
    InvalidService,
    InvalidVI,
    unexpected,
)
from token_suite.jwt import ALGORITHMS, DEFAULT_SKEW, MAX_SIZE, _expected_issuer, _header_verifier
from token_suite.jwt import _check_window as _logout_window
from token_suite.trust import TrustAnchor

__all__ = [
    "EVENT_KINDS",
    "LOGOUT_EVENT",
    "LOGOUT_TYP",
    "SET_TYP",
    "LogoutEvent",
    "SecurityEvent",
    "event_uri",
    "sign",
    "verify",
    "verify_logout",
]

SET_TYP = "secevent+jwt"
LOGOUT_TYP = "logout+jwt"
#: OpenID Connect Back-Channel Logout 1.0, section 2.4
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: our namespace of event URIs: ``urn:interops:secevent:<kind>``
NAMESPACE = "urn:interops:secevent:"
#: the kinds of event the operator sends about a declarant
EVENT_KINDS: tuple[str, ...] = (
    "declarant-created",
    "identity-changed",
    "habilitation-granted",
    "habilitation-revoked",
    "account-suspended",
    "session-ended",
)
_KIND_BY_URI = {NAMESPACE + kind: kind for kind in EVENT_KINDS}
_Event = TypeVar("_Event")
_OPTIONS = frozenset({"trust", "audience", "issuer", "now", "skew"})


def event_uri(kind: str) -> str:
    """The event URI of ``kind`` (``ValueError`` for a kind we do not send)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    return NAMESPACE + kind


@dataclass(frozen=True)
class SecurityEvent:
    """One verified SET: what happened (``kind``), to whom (``subject``: the declarant's
    opaque id, from ``sub_id``), its unique ``jti`` (keep it: a receiver may see a
    retried SET twice), when it was issued, and the event's own members (``payload``)."""

    kind: str
    subject: str
    jti: str
    issued_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LogoutEvent:
    """One verified logout token: end the sessions of ``subject`` known as ``sid``."""

    subject: str | None
    sid: str | None
    jti: str
    issued_at: datetime


def sign(claims: Mapping[str, Any], *, signer: SigningKey, typ: str) -> str:
    """``claims`` as a JWS compact token of type ``typ`` signed by ``signer`` (one of the
    profile's algorithms, else ``ValueError``)."""
    if signer.alg not in ALGORITHMS:
        raise ValueError(f"signing algorithm {signer.alg!r} not allowed")
    prefix = _jws.header_segment(signer.kid, signer.alg, typ) + b"."
    return _jws.compact_for(signer)(prefix, orjson.dumps(dict(claims)))


def _verified_claims(
    token: str | bytes, trust: TrustAnchor, audience: str, issuer: str, typ: str
) -> dict[str, Any]:
    """Checks shared by both kinds: shape, header (algorithm, key, ``typ``), signature,
    audience and issuer. Stops tokens of another kind (an ID token or an access token
    replayed as an event), forged or tampered tokens, and tokens for someone else."""
    header, payload, signing_input, signature = _jws.parse(token, MAX_SIZE)
    if not _header_verifier(header, trust, typ)(signing_input, signature):
        raise FailedCheck("signature does not verify")
    aud = payload.get("aud")
    if audience != aud and not (isinstance(aud, list) and audience in aud):
        raise InvalidService("token audience is not this receiver")
    if payload.get("iss") != issuer:
        raise InvalidIssuer("issuer is not the trusted operator")
    if not isinstance(payload.get("jti"), str) or not payload["jti"]:
        raise InvalidSecurityToken("claim jti missing")
    return payload


def _issued_at(payload: dict[str, Any], now: float, skew: float) -> datetime:
    iat: Any = payload.get("iat")
    if type(iat) not in (int, float) or not 0 <= iat <= _MAX_TIMESTAMP:
        raise InvalidVI("claim iat missing or not a NumericDate")
    if iat > now + skew:
        raise InvalidVI("token not yet valid")
    return datetime.fromtimestamp(iat, tz=UTC)


def _now(now: datetime | None) -> float:
    if now is None:
        return time.time()
    if now.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return now.timestamp()


def _checked(
    token: str | bytes,
    options: dict[str, Any],
    typ: str,
    read: Callable[[dict[str, Any], float, float], _Event],
) -> _Event:
    """The boundary of both verifiers: the common checks, then ``read`` on the claims;
    any error but an :class:`InteropsError` is a defect (:func:`errors.unexpected`)."""
    given = set(options)
    if not {"trust", "audience"} <= given <= _OPTIONS:
        raise TypeError(f"verify() takes trust=, audience= and only {sorted(_OPTIONS)}")
    trust: TrustAnchor = options["trust"]
    expected_issuer = _expected_issuer(options.get("issuer"), trust)
    moment = _now(options.get("now"))
    skew: timedelta = options.get("skew") or DEFAULT_SKEW
    try:
        payload = _verified_claims(token, trust, options["audience"], expected_issuer, typ)
        return read(payload, moment, skew.total_seconds())
    except InteropsError:
        raise
    except Exception as exc:  # noqa: BLE001 - the documented boundary (errors.unexpected)
        raise unexpected(exc, f"events.verify ({typ})", token) from None


def _set_event(payload: dict[str, Any], now: float, skew: float) -> SecurityEvent:
    issued_at = _issued_at(payload, now, skew)
    events = payload.get("events")
    if not isinstance(events, dict) or len(events) != 1:
        raise InvalidSecurityToken("claim events missing or not exactly one event")
    ((uri, members),) = events.items()
    kind = _KIND_BY_URI.get(uri)
    if kind is None or not isinstance(members, dict):
        raise InvalidSecurityToken(f"unknown event {uri!r}")
    sub_id = payload.get("sub_id")
    if not (
        isinstance(sub_id, dict)
        and sub_id.get("format") == "opaque"
        and isinstance(sub_id.get("id"), str)
        and sub_id["id"]
    ):
        raise InvalidSecurityToken("claim sub_id missing or not an opaque identifier")
    return SecurityEvent(kind, sub_id["id"], payload["jti"], issued_at, dict(members))


def _logout_event(payload: dict[str, Any], now: float, skew: float) -> LogoutEvent:
    _logout_window(payload, now, skew)
    events = payload.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise InvalidSecurityToken("not a back-channel logout event")
    if "nonce" in payload:
        raise InvalidSecurityToken("a logout token carries no nonce")
    sub, sid = payload.get("sub"), payload.get("sid")
    if not isinstance(sub, str) and not isinstance(sid, str):
        raise InvalidSecurityToken("a logout token names sub or sid")
    return LogoutEvent(
        sub if isinstance(sub, str) else None,
        sid if isinstance(sid, str) else None,
        payload["jti"],
        datetime.fromtimestamp(payload["iat"], tz=UTC),
    )


def verify(token: str | bytes, **options: Any) -> SecurityEvent:
    """Verify a SET the operator sent to ``audience=`` (the receiver's identifier), with
    ``trust=`` (our JWKS), ``issuer=`` (or ``trust.issuer``: one is required,
    ``ValueError``), optional ``now=`` and ``skew=``; return its event, or raise an
    :class:`~token_suite.errors.InteropsError`.

    Refused: another ``typ`` (an ID token, an access token, a logout token), a bad or
    unknown signature, another audience or issuer, a SET issued in the future, no
    ``events`` or not exactly one event, an event URI we do not send, no opaque
    ``sub_id`` (RFC 9493). Retried SETs carry the same ``jti``: the receiver keeps the
    ones it processed."""
    return _checked(token, options, SET_TYP, _set_event)


def verify_logout(token: str | bytes, **options: Any) -> LogoutEvent:
    """Verify a logout token (OpenID Connect Back-Channel Logout 1.0, 2.6) sent to the
    client ``audience=`` (same options as :func:`verify`): ``typ: logout+jwt``, the
    back-channel logout event, ``sub`` or ``sid``, no ``nonce`` (an ID token is never
    taken for one), inside its short validity window. Raises an
    :class:`~token_suite.errors.InteropsError` otherwise."""
    return _checked(token, options, LOGOUT_TYP, _logout_event)
