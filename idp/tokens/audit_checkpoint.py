"""Signed checkpoints of the audit trail, kept outside the database.

A checkpoint is a JWS (PyJWT) over the head of every segment and the chain key's
fingerprint, signed with the IdP's active JWT signing key, header ``typ``
:data:`TYP` and ``kid``. Why the IdP's signature rather than an HMAC under the
chain key: a checkpoint is evidence kept away from the server, and anyone (an
auditor) can check it against the published JWKS without holding a secret; and
it stays checkable by the service as long as the key is in the keyring, where a
key row only counts if it decrypts under the master key, so someone who can
write the database cannot forge a signing key. The ``typ`` keeps a checkpoint
from passing for a token and a token from passing for a checkpoint.
"""

from __future__ import annotations

from datetime import UTC

import jwt
from flask import Flask
from sqlalchemy.orm import Session

from idp.tokens.signing import keyring
from keys.crypto import KeyDecryptionError
from keys.model import KeyUse
from rcd_store import audit

TYP = "interops-audit-checkpoint+jwt"


class CheckpointRefused(ValueError):
    """The file is not a checkpoint this service signed (the message says why)."""


def sign(app: Flask, mark: audit.Checkpoint) -> str:
    """The checkpoint as a compact JWS signed with the active JWT key."""
    key = keyring(app).active(KeyUse.JWT)
    claims = {"iss": app.config["BASE_URL"], "iat": int(mark.taken_at.timestamp())}
    claims.update(mark.as_claims())
    return jwt.encode(
        claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": TYP}
    )


def take(app: Flask, session: Session) -> tuple[str, audit.Checkpoint]:
    """A signed checkpoint of every segment head now."""
    mark = audit.checkpoint(session)
    return sign(app, mark), mark


def read(app: Flask, text: str) -> audit.Checkpoint:
    """The checkpoint of ``text`` once its signature, type and issuer are checked.

    Refused (:class:`CheckpointRefused`): another type of JWS (a token), a key that is
    not one of ours, an altered payload or signature, another issuer.
    """
    try:
        header = jwt.get_unverified_header(text.strip())
    except jwt.InvalidTokenError:
        raise CheckpointRefused("ce n'est pas un point de contrôle signé") from None
    if header.get("typ") != TYP:
        raise CheckpointRefused("ce n'est pas un point de contrôle du journal (typ)")
    try:
        key = keyring(app).key(str(header.get("kid")))
    except (KeyError, KeyDecryptionError):
        raise CheckpointRefused("clé de signature inconnue de ce service") from None
    if key.use is not KeyUse.JWT:
        raise CheckpointRefused("clé de signature inconnue de ce service")
    try:
        claims = jwt.decode(
            text.strip(),
            key.public_key,
            algorithms=[key.alg],
            issuer=app.config["BASE_URL"],
            options={"require": ["iss", "iat"], "verify_aud": False},
        )
        return audit.Checkpoint.from_claims(claims)
    except jwt.InvalidSignatureError:
        raise CheckpointRefused("signature invalide") from None
    except jwt.InvalidTokenError as exc:
        raise CheckpointRefused(f"point de contrôle invalide : {exc}") from None
    except (KeyError, TypeError, ValueError):
        raise CheckpointRefused("contenu du point de contrôle mal formé") from None


def describe(mark: audit.Checkpoint) -> str:
    """One line for people: when, how many segments and events."""
    when = mark.taken_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"point de contrôle du {when} UTC ({len(mark.heads)} segments, {mark.events} événements)"
