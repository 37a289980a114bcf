"""Optional second factor: TOTP (RFC 6238, pyotp) and 10 single-use recovery codes; the
check the login and the machine paths make (:func:`check_second_factor`). The pages
that enrol and disable it are in :mod:`idp.auth.totp`.

- A TOTP code is accepted once: the time step it matched is recorded
  (``OneTimeSecret`` purpose ``totp-used``, primary key = hash of declarant and
  step, inserted with ``ON CONFLICT DO NOTHING``), so a code seen over a shoulder
  or in a proxy log cannot be replayed within its window, even concurrently.
- Recovery codes carry 80 random bits, are stored as SHA-256 digests only and are
  used with one conditional UPDATE (single use under concurrency).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from idp.stores.models import OneTimeSecret
from idp.tokens.signing import master_key
from keys.crypto import KeyDecryptionError
from rcd_store.db import rows_affected, upsert
from rcd_store.models import Declarant

log = logging.getLogger(__name__)

ISSUER = "Interops"
STEP = 30
WINDOW = 1  # the previous and the next step are accepted (clock drift)
RECOVERY_CODES = 10
ENROL_MAX_AGE = 600


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh 160-bit base32 secret."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, declarant: Declarant) -> str:
    return pyotp.TOTP(secret).provisioning_uri(
        name=declarant.email or declarant.id, issuer_name=ISSUER
    )


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _mark_step_used(session: Session, declarant_id: str, step: int, now: datetime) -> bool:
    """Record the step as used; False when it already was (a replay)."""
    session.execute(
        delete(OneTimeSecret).where(
            OneTimeSecret.declarant_id == declarant_id,
            OneTimeSecret.purpose == "totp-used",
            OneTimeSecret.expires_at < now,
        )
    )
    stmt = (
        upsert(session, OneTimeSecret)
        .values(
            secret_hash=_digest(f"totp:{declarant_id}:{step}"),
            purpose="totp-used",
            declarant_id=declarant_id,
            created_at=now,
            expires_at=now + timedelta(seconds=STEP * (2 * WINDOW + 2)),
        )
        .on_conflict_do_nothing()
        .returning(OneTimeSecret.secret_hash)
    )
    return session.execute(stmt).scalar() is not None


def verify_totp(
    session: Session, declarant_id: str, secret: str, code: str, *, now: datetime | None = None
) -> bool:
    """True when ``code`` is valid now for ``secret`` and was never accepted before."""
    now = now or datetime.now(UTC)
    step = _matching_step(secret, code, now)
    return step is not None and _mark_step_used(session, declarant_id, step, now)


def _normal_recovery(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def new_recovery_codes(session: Session, declarant_id: str) -> list[str]:
    """Replace the declarant's recovery codes by 10 new ones (shown once, stored hashed)."""
    session.execute(
        delete(OneTimeSecret).where(
            OneTimeSecret.declarant_id == declarant_id, OneTimeSecret.purpose == "recovery"
        )
    )
    codes = []
    for _i in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")  # 80 bits, 16 chars
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
        session.add(
            OneTimeSecret(
                secret_hash=_digest("recovery:" + raw),
                purpose="recovery",
                declarant_id=declarant_id,
            )
        )
    session.flush()
    return codes


def use_recovery_code(session: Session, declarant_id: str, code: str) -> bool:
    """True, and the code is spent, when it is one of the declarant's unused recovery codes."""
    raw = _normal_recovery(code)
    if len(raw) != 16:
        return False
    result = session.execute(
        update(OneTimeSecret)
        .where(
            OneTimeSecret.secret_hash == _digest("recovery:" + raw),
            OneTimeSecret.declarant_id == declarant_id,
            OneTimeSecret.purpose == "recovery",
            OneTimeSecret.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
    )
    return rows_affected(result) == 1


SEALED_PREFIX = "v1:"


def seal_secret(declarant_id: str, secret: str) -> str:
    """The TOTP secret as stored: AES-GCM under the master key, bound to the declarant
    (a copy of the table gives no usable secret; a value moved to another row fails)."""
    blob = master_key().encrypt(
        secret.encode("ascii"), associated_data=b"totp:" + declarant_id.encode()
    )
    return SEALED_PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def open_secret(declarant_id: str, stored: str) -> str:
    """The TOTP secret of a stored value; raises ``KeyDecryptionError`` if it was altered,
    moved, or sealed under another master key."""
    if not stored.startswith(SEALED_PREFIX):
        raise KeyDecryptionError("TOTP secret is not sealed")
    text = stored[len(SEALED_PREFIX) :]
    blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return master_key().decrypt(blob, associated_data=b"totp:" + declarant_id.encode()).decode()


def check_second_factor(session: Session, declarant: Declarant, code: str) -> bool:
    """A TOTP code (never replayed) or a recovery code (spent); the caller commits.

    An unreadable stored secret (wrong master key, altered row) refuses the TOTP code
    and is logged; recovery codes still work."""
    if not declarant.totp_secret or not code:
        return False
    try:
        secret = open_secret(declarant.id, declarant.totp_secret)
    except (KeyDecryptionError, ValueError):
        log.error("secret TOTP illisible pour %s : clé maîtresse ou ligne altérée", declarant.id)
        secret = None
    if secret is not None and verify_totp(session, declarant.id, secret, code):
        return True
    return use_recovery_code(session, declarant.id, code)


# ------------------------------------------------------------------ enrolment pages
