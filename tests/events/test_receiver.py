"""The receiver's side in ``token_suite.events``: a SET or a logout token verifies into a
typed event, and every other token is refused."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest

from tests.token_suite.jwt_support import ATTACKER, AUDIENCE, ES256, ISSUER, NOW, RS256, trust
from token_suite import events
from token_suite import jwt as interops_jwt
from token_suite.errors import (
    FailedCheck,
    InvalidIssuer,
    InvalidSecurityToken,
    InvalidService,
    InvalidVI,
)
from token_suite.vector import IdentityVector

URI = "urn:interops:secevent:habilitation-revoked"


def _set(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": "evt-1",
        "iat": int(NOW.timestamp()),
        "sub_id": {"format": "opaque", "id": "D0000001"},
        "events": {URI: {"service": "DSN", "siret": "73282932000074"}},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _verify(token: str, **options: Any) -> events.SecurityEvent:
    return events.verify(token, **{"trust": trust(), "audience": AUDIENCE, "now": NOW, **options})


def test_a_good_set_gives_its_typed_event() -> None:
    token = events.sign(_set(), signer=ES256, typ=events.SET_TYP)
    assert _verify(token) == events.SecurityEvent(
        kind="habilitation-revoked",
        subject="D0000001",
        jti="evt-1",
        issued_at=NOW,
        payload={"service": "DSN", "siret": "73282932000074"},
    )
    assert _verify(events.sign(_set(), signer=RS256, typ=events.SET_TYP)).kind == (
        "habilitation-revoked"
    )


@pytest.mark.parametrize(
    ("claims", "typ", "error"),
    [
        (_set(), "JWT", FailedCheck),
        (_set(), events.LOGOUT_TYP, FailedCheck),
        (_set(aud="urn:interops:partner:other"), events.SET_TYP, InvalidService),
        (_set(iss="https://evil.example"), events.SET_TYP, InvalidIssuer),
        (_set(events={"urn:interops:secevent:unknown": {}}), events.SET_TYP, InvalidSecurityToken),
        (_set(events=None), events.SET_TYP, InvalidSecurityToken),
        (
            _set(events={URI: {}, events.event_uri("session-ended"): {}}),
            events.SET_TYP,
            InvalidSecurityToken,
        ),
        (_set(sub_id={"format": "email", "id": "x@y"}), events.SET_TYP, InvalidSecurityToken),
        (_set(jti=None), events.SET_TYP, InvalidSecurityToken),
        (_set(iat=int((NOW + timedelta(hours=1)).timestamp())), events.SET_TYP, InvalidVI),
    ],
    ids=[
        "typ-jwt",
        "typ-logout",
        "audience",
        "issuer",
        "unknown-event",
        "no-events",
        "two-events",
        "sub-id-format",
        "no-jti",
        "future",
    ],
)
def test_other_tokens_are_refused(claims: dict[str, Any], typ: str, error: type) -> None:
    with pytest.raises(error):
        _verify(events.sign(claims, signer=ES256, typ=typ))


def test_a_tampered_set_is_refused() -> None:
    header, payload, signature = events.sign(_set(), signer=ES256, typ=events.SET_TYP).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["events"] = {events.event_uri("habilitation-granted"): {"service": "DSN"}}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(FailedCheck):
        _verify(f"{header}.{forged}.{signature}")


def test_a_set_signed_by_an_unknown_key_is_refused() -> None:
    with pytest.raises(FailedCheck):
        _verify(events.sign(_set(), signer=ATTACKER, typ=events.SET_TYP))


def test_an_id_token_or_navigation_jwt_is_no_set() -> None:
    vector = IdentityVector(subject="D0000001")
    for typ in (None, "JWT"):
        token = interops_jwt.issue(
            vector, signer=ES256, issuer=ISSUER, audience=AUDIENCE, now=NOW, typ=typ
        )
        with pytest.raises(FailedCheck):
            _verify(token)


def test_verify_needs_its_options() -> None:
    token = events.sign(_set(), signer=ES256, typ=events.SET_TYP)
    with pytest.raises(TypeError):
        events.verify(token, trust=trust())
    with pytest.raises(TypeError):
        events.verify(token, trust=trust(), audience=AUDIENCE, replay=None)


def _logout(**changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "rp-client",
        "jti": "lo-1",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 120,
        "sub": "D0000001",
        "sid": "s-1",
        "events": {events.LOGOUT_EVENT: {}},
    }
    claims.update(changes)
    body = {k: v for k, v in claims.items() if v is not None}
    return events.sign(body, signer=ES256, typ=events.LOGOUT_TYP)


def test_logout_tokens() -> None:
    def check(token: str) -> events.LogoutEvent:
        return events.verify_logout(token, trust=trust(), audience="rp-client", now=NOW)

    assert check(_logout()) == events.LogoutEvent("D0000001", "s-1", "lo-1", NOW)
    for bad, error in (
        (_logout(nonce="n"), InvalidSecurityToken),
        (_logout(events={URI: {}}), InvalidSecurityToken),
        (_logout(sub=None, sid=None), InvalidSecurityToken),
        (_logout(exp=int(NOW.timestamp()) - 600), InvalidVI),
        (events.sign({"iss": ISSUER}, signer=ES256, typ=events.SET_TYP), FailedCheck),
    ):
        with pytest.raises(error):
            check(bad)
