"""Our own tokens presented back to us (userinfo, introspection's neighbours, token
exchange, logout hints): verified by our published keys and issuer, each for its kind
(``typ``, :mod:`idp.tokens.issuing`) and an audience that only its use carries."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.oidc.clients import digest, issuer
from idp.oidc.server import own_trust
from idp.stores.models import IssuedToken
from idp.tokens.issuing import ACCESS_TOKEN_TYP, MACHINE_ACR
from token_suite import jwt as interops_jwt
from token_suite.errors import FailedCheck, InteropsError, InvalidSecurityToken
from token_suite.vector import IdentityVector


class NoReplay:
    """Access and ID tokens are presented many times until they expire: no replay check."""

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        return False


def unverified_part(token: str, index: int) -> dict[str, Any]:
    """The header (0) or payload (1) of a compact JWS, read WITHOUT verification (``{}``
    when unreadable): only to choose how to verify it, never to trust it."""
    try:
        segment = token.split(".")[index]
        part = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return {}
    return part if isinstance(part, dict) else {}


def verify_own_token(
    token: str, *, audience: str, typ: str | None, now: datetime | None = None
) -> IdentityVector:
    """One of our tokens of kind ``typ`` (``None``: an ID token, whose header has no
    ``typ``), by our published keys and issuer (:func:`token_suite.jwt.verify`: stops
    forged, foreign and expired tokens, and tokens of another kind); raises
    :class:`InteropsError`."""
    if typ is None and unverified_part(token, 0).get("typ") is not None:
        raise FailedCheck("unexpected token type")
    return interops_jwt.verify(
        token,
        trust=own_trust(),
        audience=audience,
        issuer=issuer(),
        typ=typ,
        replay=NoReplay(),
        now=now,
    )


def live_access_token(session: Session, token: str) -> tuple[IdentityVector, IssuedToken]:
    """One of our access tokens, recorded here and not revoked, verified
    (:func:`verify_own_token`); raises :class:`InteropsError` otherwise (stops revoked,
    unknown and forged bearer tokens). A machine token without a row is verified once,
    by :func:`machine_token`."""
    row = _row(session, token)
    if row is None:
        found = machine_token(token)
        if found is None:
            raise InvalidSecurityToken("access token unknown or revoked")
        return found
    if row.kind != "access" or row.revoked_at is not None or not row.audience:
        raise InvalidSecurityToken("access token unknown or revoked")
    return verify_own_token(token, audience=row.audience, typ=ACCESS_TOKEN_TYP), row


def access_record(session: Session, token: str) -> IssuedToken | None:
    """What we recorded of a token we issued: its ``IssuedToken`` row, found by the
    token's SHA-256; for a machine token (``client_credentials``), which has no row until
    it is revoked (its trace is its audit event, committed before it left), a record
    read from the token once verified as ours (:func:`machine_token`). ``None`` for
    anything else."""
    row = _row(session, token)
    if row is not None:
        return row
    found = machine_token(token)
    return found[1] if found is not None else None


def _row(session: Session, token: str) -> IssuedToken | None:
    return session.scalars(
        select(IssuedToken).where(IssuedToken.token_hash == digest(token))
    ).first()


def machine_token(token: str) -> tuple[IdentityVector, IssuedToken] | None:
    """A machine token without a row, verified by our keys as an unexpired ``at+jwt``
    with the machine ``acr`` and no ``act`` (a token exchanged for a machine has its own
    row), and its record, added to no session; ``None`` otherwise."""
    claims = unverified_part(token, 1)
    audience = claims.get("aud")
    if claims.get("acr") != MACHINE_ACR or "act" in claims or not isinstance(audience, str):
        return None
    try:
        vector = verify_own_token(token, audience=audience, typ=ACCESS_TOKEN_TYP)
    except InteropsError:
        return None
    verified = vector.claims
    return vector, IssuedToken(
        jti=str(verified["jti"]),
        kind="access",
        client_id=str(verified.get("client_id") or vector.subject),
        subject=vector.subject,
        scope=str(verified.get("scope") or ""),
        audience=audience,
        token_hash=digest(token),
        issued_at=datetime.fromtimestamp(int(verified["iat"]), UTC),
        expires_at=datetime.fromtimestamp(int(verified["exp"]), UTC),
    )
