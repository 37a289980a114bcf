"""Optional second factor: TOTP (RFC 6238, pyotp) and 10 single-use recovery codes.

- A TOTP code is accepted once: the time step it matched is recorded
  (``OneTimeSecret`` purpose ``totp-used``, primary key = hash of declarant and
  step, inserted with ``ON CONFLICT DO NOTHING``), so a code seen over a shoulder
  or in a proxy log cannot be replayed within its window, even concurrently.
- Recovery codes carry 80 random bits, are stored as SHA-256 digests only and are
  used with one conditional UPDATE (single use under concurrency).
- Enrolment at ``/compte/double-authentification``: the secret is shown as text
  and as an ``otpauth://`` URI, and is kept only once a code from it is confirmed;
  the pending secret rides in a signed, 10-minute hidden field bound to the
  declarant (a forged or swapped field is refused).
- Disabling takes a code under the same attempt budgets as the login's code step.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta

import pyotp
from flask import Blueprint, Response, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from idp.auth.throttle import throttle
from idp.i18n import _
from idp.stores import db
from idp.stores.models import OneTimeSecret
from idp.tokens.signing import master_key
from keys.crypto import KeyDecryptionError
from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.models import Declarant

log = logging.getLogger(__name__)

bp = Blueprint("totp", __name__)

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
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(OneTimeSecret)
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


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="idp.auth.totp.enrol")


@bp.after_request
def _no_store(response: Response) -> Response:
    from idp.auth.login import no_store

    return no_store(response)


@bp.get("/compte/double-authentification")
def enrol() -> BaseResponse | tuple[str, int]:
    from idp.auth.login import authenticated_declarant, login_required

    found = authenticated_declarant()
    if found is None:
        return login_required(request.path)
    declarant = found[1]
    if declarant.totp_secret:
        return render_template("totp_status.html"), 200
    secret = new_secret()
    pending = _serializer().dumps({"d": declarant.id, "s": secret})
    return render_template(
        "totp_enrol.html", secret=secret, pending=pending, uri=provisioning_uri(secret, declarant)
    ), 200


@bp.post("/compte/double-authentification")
def enrol_post() -> BaseResponse | tuple[str, int]:
    from idp.auth.login import authenticated_declarant, login_required

    found = authenticated_declarant()
    if found is None:
        return login_required(request.path)
    declarant = found[1]
    session = db.session()
    if request.form.get("action") == "desactiver":
        return _disable(session, declarant)
    try:
        data = _serializer().loads(request.form.get("attente", ""), max_age=ENROL_MAX_AGE)
    except BadSignature:
        return render_template(
            "totp_status.html", error=_("La demande d'activation a expiré : recommencez.")
        ), 400
    if not isinstance(data, dict) or data.get("d") != declarant.id:
        return render_template(
            "totp_status.html", error=_("La demande d'activation a expiré : recommencez.")
        ), 400
    secret = str(data["s"])
    if not verify_totp(session, declarant.id, secret, request.form.get("code", "")):
        session.rollback()
        return render_template(
            "totp_enrol.html",
            secret=secret,
            pending=request.form.get("attente"),
            uri=provisioning_uri(secret, declarant),
            error=_(
                "Code incorrect : vérifiez l'heure de votre téléphone et saisissez le code affiché."
            ),
        ), 200
    session.execute(
        update(Declarant)
        .where(Declarant.id == declarant.id)
        .values(totp_secret=seal_secret(declarant.id, secret))
    )
    codes = new_recovery_codes(session, declarant.id)
    audit.record(session, "totp.enabled", actor=declarant.id)
    session.commit()
    return render_template("totp_codes.html", codes=codes), 200


def _disable(session: Session, declarant: Declarant) -> Response | tuple[str, int]:
    """Turn the second factor off with a code (TOTP or recovery), under the same budgets as
    the login's code step (:meth:`idp.auth.throttle.Throttle.reserve_code`): stops a stolen
    session from guessing its way to removing the factor."""
    from idp.auth.login import client_address, too_many

    session.commit()  # hand the connection back before the throttle takes its own
    guard = throttle()
    attempt = guard.reserve_code(declarant.id, client_address())
    if not attempt.allowed:
        return too_many(attempt.retry_after, template="totp_status.html")
    if not check_second_factor(session, declarant, request.form.get("code", "")):
        session.rollback()
        guard.code_failed(attempt)
        return render_template(
            "totp_status.html", error=_("Code incorrect : la double authentification reste active.")
        ), 200
    session.execute(update(Declarant).where(Declarant.id == declarant.id).values(totp_secret=None))
    session.execute(
        delete(OneTimeSecret).where(
            OneTimeSecret.declarant_id == declarant.id, OneTimeSecret.purpose == "recovery"
        )
    )
    audit.record(session, "totp.disabled", actor=declarant.id)
    session.commit()
    guard.code_succeeded(attempt)
    return render_template("totp_status.html", disabled=True), 200
