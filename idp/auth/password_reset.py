"""Password reset by email: ``/mot-de-passe/oubli`` asks for a link,
``/mot-de-passe/nouveau`` sets the new password.

Security properties (each stops an attack):
- the same answer whether or not the address is known (no account enumeration), and
  20 requests per client address per 15 minutes (no mail bombing);
- links carry 256 random bits, are stored hashed, single use (also under concurrent
  use), and expire after one hour; using one kills the declarant's other links; the
  email waiting in the outbox holds the link sealed under the master key, and is
  deleted once sent or after the hour (a database dump reveals no usable link);
- the new password meets the policy; every SSO session of the declarant ends and the
  login lockout is lifted;
- ``frame-ancestors 'none'`` (clickjacking), as on the login pages.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.auth.login import by_email, client_address, form_field, secret_digest, too_many
from idp.auth.passwords import passwords
from idp.auth.throttle import account_key, throttle
from idp.i18n import N_, _
from idp.sessions import sso as sessions
from idp.stores import db
from idp.stores.models import OneTimeSecret
from idp.stores.sealing import app_sealer
from idp.web.answers import no_store
from rcd_store import audit, outbox
from rcd_store.db import rows_affected
from rcd_store.models import Declarant
from rcd_store.passwords import PasswordPolicyError, check_policy

bp = Blueprint("password_reset", __name__)
bp.after_request(no_store)

RESET_LIFETIME = timedelta(hours=1)


@bp.get("/mot-de-passe/oubli")
def reset_request() -> str:
    return render_template("reset_request.html")


@bp.post("/mot-de-passe/oubli")
def reset_request_post() -> Response | tuple[str, int]:
    """Always the same answer, whether or not the address is known (no enumeration); a
    link by email when it is. 20 requests per address per 15 minutes (no mail bombing)."""
    reservation = throttle().reserve_address("reset:" + client_address())
    if not reservation.allowed:
        return too_many(reservation.retry_after, template="reset_request.html")
    session = db.session()
    email = form_field("courriel")
    ident = by_email(session, email)
    if len(ident.candidates) == 1:
        _send_reset_link(session, ident.candidates[0])
    return render_template("reset_request.html", sent=True), 200


def _send_reset_link(session: Session, declarant: Declarant) -> None:
    token = secrets.token_urlsafe(32)  # 256 bits
    now = datetime.now(UTC)
    session.add(
        OneTimeSecret(
            secret_hash=secret_digest(token),
            purpose="reset",
            declarant_id=declarant.id,
            expires_at=now + RESET_LIFETIME,
        )
    )
    link = f"{current_app.config['BASE_URL']}/mot-de-passe/nouveau?" + urlencode({"jeton": token})
    body = render_template(
        "reset_email.txt", link=link, minutes=int(RESET_LIFETIME.total_seconds()) // 60
    )
    outbox.put(  # the link sealed under the master key, purged once sent or expired
        session,
        app_sealer(),
        channel="email",
        kind="password_reset",
        recipient=declarant.email or "",
        subject=_("Réinitialisation de votre mot de passe"),
        body=body,
        lifetime=RESET_LIFETIME,
    )
    audit.record(session, "password.reset_requested", actor=declarant.id)
    session.commit()


def _reset_row(session: Session, token: str) -> OneTimeSecret | None:
    row = session.get(OneTimeSecret, secret_digest(token)) if token and len(token) < 100 else None
    if row is None or row.purpose != "reset" or row.used_at is not None:
        return None
    if row.expires_at is None or row.expires_at <= datetime.now(UTC):
        return None
    return row


_BAD_LINK = N_("Ce lien n'est plus valable (déjà utilisé ou expiré) : demandez-en un nouveau.")


@bp.get("/mot-de-passe/nouveau")
def reset_form() -> tuple[str, int]:
    token = (request.args.get("jeton") or "")[:100]
    if _reset_row(db.session(), token) is None:
        return render_template("reset_form.html", invalid=True, error=_(_BAD_LINK)), 400
    return render_template("reset_form.html", token=token), 200


@bp.post("/mot-de-passe/nouveau")
def reset_form_post() -> Response | tuple[str, int]:
    """Set the new password (policy checked), use the link once, end every session of the
    declarant and lift the lockout."""
    session = db.session()
    token = form_field("jeton")
    row = _reset_row(session, token)
    declarant = session.get(Declarant, row.declarant_id) if row else None
    if row is None or declarant is None:
        return render_template("reset_form.html", invalid=True, error=_(_BAD_LINK)), 400
    password = (request.form.get("mot_de_passe") or "")[:1024]
    if password != (request.form.get("confirmation") or "")[:1024]:
        return render_template(
            "reset_form.html",
            token=token,
            error=_("Les deux mots de passe ne sont pas identiques."),
        ), 200
    try:
        check_policy(
            password, context=(declarant.last_name, declarant.first_name, declarant.email or "")
        )
    except PasswordPolicyError as exc:
        return render_template(
            "reset_form.html",
            token=token,
            error=_("Mot de passe refusé : {reason}.", reason=str(exc)),
        ), 200
    # hashed before the first write: no write lock (SQLite) is held while argon2id runs
    new_hash = passwords().hash(password)
    now = datetime.now(UTC)
    used = rows_affected(
        session.execute(
            update(OneTimeSecret)
            .where(OneTimeSecret.secret_hash == row.secret_hash, OneTimeSecret.used_at.is_(None))
            .values(used_at=now)
        )
    )
    if used != 1:  # a concurrent request used it first
        session.rollback()
        return render_template("reset_form.html", invalid=True, error=_(_BAD_LINK)), 400
    session.execute(
        update(OneTimeSecret)
        .where(  # any other link of this declarant dies too
            OneTimeSecret.declarant_id == declarant.id,
            OneTimeSecret.purpose == "reset",
            OneTimeSecret.used_at.is_(None),
        )
        .values(used_at=now)
    )
    session.execute(
        update(Declarant).where(Declarant.id == declarant.id).values(password_hash=new_hash)
    )
    sessions.end_declarant_sessions(session, declarant.id)
    audit.record(session, "password.reset", actor=declarant.id)
    session.commit()
    throttle().backend.reset(account_key(declarant_id=declarant.id))
    response = Response(render_template("reset_form.html", done=True))
    sessions.clear_cookie(response)
    return response
