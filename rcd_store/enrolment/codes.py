"""One-time codes and links: at least 64 random bits, stored as their SHA-256 only,
single use (an atomic ``UPDATE ... WHERE used_at IS NULL``), expiring.

A link carries 256 random bits (URL-safe); a letter code carries 80 (16 characters of
Crockford's base32, shown in groups of four, typed back with or without the dashes,
in any case, with O read as 0 and I or L as 1). The digest covers the purpose, so a
secret issued for one purpose never opens another.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rcd_store.db import rows_affected, utcnow
from rcd_store.enrolment.models import OneTimeCode
from rcd_store.errors import DirectoryError

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # 80 bits
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
KINDS = ("link", "code")
#: longer input is refused before hashing (no secret is that long)
MAX_SECRET = 100


class InvalidCode(DirectoryError):
    """A code or link that is unknown, already used, or issued for something else."""


class ExpiredCode(InvalidCode):
    """A code or link past its expiry."""


_UNKNOWN = "ce code ou ce lien n'est pas valable (inconnu ou déjà utilisé)"
_EXPIRED = "ce code ou ce lien a expiré : demandez-en un nouveau"


def normalise(secret: str, kind: str) -> str:
    """The secret as it was issued: letter codes lose spaces and dashes, are upper-cased
    and read O as 0, I and L as 1; links are kept as they are."""
    if kind == "code":
        return "".join(secret.split()).replace("-", "").upper().translate(_READ_AS)
    return secret.strip()


def digest(purpose: str, secret: str) -> str:
    return hashlib.sha256(f"{purpose}\x00{secret}".encode()).hexdigest()


def _new_secret(kind: str) -> str:
    if kind == "link":
        return secrets.token_urlsafe(32)
    code = "".join(secrets.choice(CROCKFORD) for _ in range(CODE_LENGTH))
    return "-".join(code[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def issue(
    session: Session, *, purpose: str, subject: str, lifetime: timedelta, kind: str = "link"
) -> str:
    """A new secret about ``subject``, valid ``lifetime``, stored hashed in the caller's
    transaction; returns it in clear (the only time it exists in clear)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}: {kind!r}")
    if lifetime <= timedelta(0):
        raise ValueError("lifetime must be positive")
    secret = _new_secret(kind)
    now = utcnow()
    session.add(
        OneTimeCode(
            secret_hash=digest(purpose, normalise(secret, kind)),
            purpose=purpose,
            subject=subject,
            kind=kind,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return secret


def _find(session: Session, purpose: str, secret: str) -> OneTimeCode:
    """The live row of ``secret`` (a link or a code), or :class:`InvalidCode` /
    :class:`ExpiredCode`."""
    if not isinstance(secret, str) or not secret.strip() or len(secret) > MAX_SECRET:
        raise InvalidCode(_UNKNOWN)
    hashes = {digest(purpose, normalise(secret, kind)) for kind in KINDS}
    row = session.scalars(
        select(OneTimeCode).where(
            OneTimeCode.secret_hash.in_(hashes), OneTimeCode.purpose == purpose
        )
    ).first()
    if row is None or row.used_at is not None:
        raise InvalidCode(_UNKNOWN)
    if row.expires_at <= utcnow():
        raise ExpiredCode(_EXPIRED)
    return row


def peek(session: Session, *, purpose: str, secret: str) -> str:
    """The subject of a live secret, without using it (a GET that shows a form)."""
    return _find(session, purpose, secret).subject


def redeem(session: Session, *, purpose: str, secret: str, subject: str | None = None) -> str:
    """Use the secret once, in the caller's transaction; returns its subject. With
    ``subject``, a secret about anything else is refused (and stays unused)."""
    row = _find(session, purpose, secret)
    if subject is not None and row.subject != subject:
        raise InvalidCode(_UNKNOWN)
    now = utcnow()
    used = session.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.secret_hash == row.secret_hash,
            OneTimeCode.used_at.is_(None),
            OneTimeCode.expires_at > now,
        )
        .values(used_at=now)
    )
    if rows_affected(used) != 1:  # a concurrent use won
        raise InvalidCode(_UNKNOWN)
    return row.subject


def void(session: Session, *, purpose: str, subject: str) -> int:
    """Use up every live secret of ``purpose`` about ``subject`` (a refused candidate's
    codes, a request already decided); returns how many."""
    return rows_affected(
        session.execute(
            update(OneTimeCode)
            .where(
                OneTimeCode.purpose == purpose,
                OneTimeCode.subject == subject,
                OneTimeCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
        )
    )
