"""The portal's login: ``/connexion`` (SIRET + names, or email; then TOTP if enrolled)
and ``/deconnexion``; the password reset by email is in :mod:`idp.auth.password_reset`.

Security properties (each stops an attack):
- one message for every wrong credential, and the same 429 after the same number
  of failures for an unknown identifier (no account enumeration);
- attempts reserved before the password is checked (:mod:`idp.auth.throttle`: bursts of
  guesses cannot exceed the threshold);
- a new session id at every login (session fixation);
- ``next`` followed only when it is a local path (:mod:`idp.web.redirects`: open redirect);
- never cached; never framed (``idp.web.security_headers``: clickjacking).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request
from sqlalchemy import BindParameter, Select, bindparam, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from idp.auth import second_factor
from idp.auth.passwords import passwords
from idp.auth.throttle import CodeAttempt, Reservation, account_key, throttle
from idp.i18n import N_, _
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.stores.group_commit import Event
from idp.stores.models import OneTimeSecret
from idp.web.answers import no_store
from idp.web.redirects import local_target
from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.models import Declarant, DeclarantStatus, Establishment, Habilitation, Role
from rcd_store.names import name_key
from rcd_store.services import check_password
from token_suite.vector import ACR_PASSWORD, ACR_TOTP

bp = Blueprint("login", __name__)

MFA_LIFETIME = timedelta(minutes=5)
#: where the lean path (idp.auth.lean_login) hands the route a failed attempt it made
HANDED_OVER = "idp.auth.login.failed_attempt"
MAX_FIELD = 254
BAD_CREDENTIALS = N_("Identifiants incorrects : vérifiez vos informations et réessayez.")
PENDING_EXPIRED = N_("Votre demande de connexion a expiré : identifiez-vous de nouveau.")
CODES_SPENT = N_("Code incorrect : trop d'essais pour cette connexion, identifiez-vous de nouveau.")
TOO_MANY = N_(
    "Trop de tentatives : la connexion est temporairement bloquée. "
    "Réessayez dans {minutes} minute(s) ou réinitialisez votre mot de passe."
)


# ------------------------------------------------------------------ helpers for others


def login_required(next_url: str, *, force: bool = False) -> BaseResponse:
    """Send the browser to the login page, to come back to ``next_url`` (a local path)."""
    params = {"next": local_target(next_url)}
    if force:
        params["force"] = "1"
    return redirect("/connexion?" + urlencode(params), code=302)


def authenticated_declarant() -> tuple[SsoRecord, Declarant] | None:
    """The live SSO session of this browser and its active declarant, or None."""
    row = sessions.current_session()
    if row is None:
        return None
    declarant = db.session().get(Declarant, row.declarant_id)
    if declarant is None or declarant.status != DeclarantStatus.ACTIVE.value:
        return None
    return row, declarant


# pages that take a password or a code are never cached (framing is forbidden for every
# page by idp.web.security_headers); idp.auth.totp and password_reset do the same
bp.after_request(no_store)


def form_field(name: str, form: MultiDict[str, str] | None = None) -> str:
    """A posted field (of ``form``, by default the request's), stripped and cut at
    :data:`MAX_FIELD` characters ("" when absent)."""
    return ((request.form if form is None else form).get(name) or "").strip()[:MAX_FIELD]


def client_address(environ: dict[str, Any] | None = None) -> str:
    """The client's address (of ``environ``, by default the request's), as ProxyFix set
    it (TRUSTED_PROXIES), for rate limits."""
    return (request.environ if environ is None else environ).get("REMOTE_ADDR") or "inconnue"


# ------------------------------------------------------------------ identification


@dataclass
class Identification:
    """What the form identified: candidate declarants, and the typed identifier (for the
    counter of an unknown one)."""

    method: str
    identifier: str
    candidates: list[Declarant] = field(default_factory=list)


def _by_siret_statement() -> Select[Declarant]:
    """Declarants named so (``:last``, ``:first``) who hold a role in the company of the
    establishment ``:siret`` or a habilitation on it: one statement, the establishment
    joined, not read first."""
    siret: BindParameter[str] = bindparam("siret")
    in_company = (
        select(Role.declarant_id)
        .join(Establishment, Establishment.company_id == Role.company_id)
        .where(Establishment.siret == siret)
    )
    habilitated = (
        select(Habilitation.declarant_id)
        .join(Establishment, Establishment.id == Habilitation.establishment_id)
        .where(Establishment.siret == siret, Habilitation.revoked_at.is_(None))
    )
    return (
        select(Declarant)
        .where(
            Declarant.last_name_key == bindparam("last"),
            Declarant.first_name_key == bindparam("first"),
            Declarant.status == DeclarantStatus.ACTIVE.value,
            or_(Declarant.id.in_(in_company), Declarant.id.in_(habilitated)),
        )
        .order_by(Declarant.id)
        .limit(3)
    )


#: built once: building it per login cost more CPU than running it (issue 18)
_BY_SIRET = _by_siret_statement()


def by_siret(session: Session, siret: str, last_name: str, first_name: str) -> Identification:
    """Declarants named so who hold a role in the establishment's company or a habilitation
    on the establishment (names matched with ``name_key``)."""
    siret = "".join(siret.split())
    last, first = name_key(last_name), name_key(first_name)
    found = Identification("siret", f"siret:{siret}:{last}:{first}")
    if not re.fullmatch(r"\d{14}", siret) or not last or not first:
        return found
    params = {"siret": siret, "last": last, "first": first}
    found.candidates = list(session.scalars(_BY_SIRET, params))
    return found


def by_email(session: Session, email: str) -> Identification:
    key = email.strip().casefold()
    found = Identification("courriel", f"courriel:{key}")
    if "@" in key:
        found.candidates = list(
            session.scalars(
                select(Declarant).where(
                    Declarant.email_key == key, Declarant.status == DeclarantStatus.ACTIVE.value
                )
            )
        )
    return found


# ------------------------------------------------------------------ authentication


@dataclass
class AuthResult:
    """The outcome of one password attempt."""

    declarant: Declarant | None = None
    locked: bool = False
    retry_after: int = 0
    account: Reservation | None = None
    address: Reservation | None = None


def _dummy_hash(app: Flask) -> str:
    found = app.extensions.get("idp.auth.login.dummy_hash")
    if found is None:
        found = app.extensions["idp.auth.login.dummy_hash"] = passwords(app).hash(
            secrets.token_hex(16)
        )
    return str(found)


def _second_factor(declarant: Declarant, code_follows: bool) -> bool:
    return code_follows and bool(declarant.totp_secret)


def authenticate(
    session: Session,
    ident: Identification,
    password: str,
    *,
    code_follows: bool = True,
    from_address: str | None = None,
) -> AuthResult:
    """Check ``password`` for the identified declarant, under the lockout and the address limit.

    Reserves the attempt (address, then the first candidate's account, or the unknown
    identifier's counter: one round trip, :meth:`idp.auth.throttle.Throttle.reserve_attempt`)
    BEFORE checking the password; a refused reservation checks nothing. An unknown
    identifier costs the same hash check and counts on its own key. The request session
    is committed before the throttle's own transactions (the rehash on login).

    ``code_follows``: this path asks the second factor after the password (the login
    page), so a declarant who has one may pass the account lock set from other
    addresses (:meth:`idp.auth.throttle.Throttle.declarant_keys`). A path that asks no
    code (the machine login) passes False: the account-wide lock then holds from every
    address. ``from_address``: the client's (by default the request's, :func:`client_address`)."""
    session.commit()  # hand the connection back: never hold two at once (pool exhaustion)
    guard, where = throttle(), from_address or client_address()
    first = ident.candidates[0] if ident.candidates else None
    keys = (
        guard.declarant_keys(first.id, where, second_factor=_second_factor(first, code_follows))
        if first is not None
        else [account_key(identifier=ident.identifier)]
    )
    address, reserved = guard.reserve_attempt(where, keys)
    if reserved is None:
        return AuthResult(locked=True, retry_after=address.retry_after, address=address)
    if first is None:
        return _unknown(password, address, reserved)
    result = AuthResult(address=address)
    tried: list[Reservation] = []
    for declarant in ident.candidates:
        reservation = (
            reserved
            if declarant is first
            else guard.reserve_declarant(
                declarant.id, where, second_factor=_second_factor(declarant, code_follows)
            )
        )
        if not reservation.allowed:
            result.locked = True
            result.retry_after = max(result.retry_after, reservation.retry_after)
            continue
        ok = check_password(session, declarant, password, passwords=passwords())
        session.commit()
        if ok:
            return AuthResult(declarant=declarant, account=reservation, address=address)
        tried.append(reservation)
    for reservation in tried:
        guard.failed(reservation)
    guard.failed(address)
    return result


def _unknown(password: str, address: Reservation, reservation: Reservation) -> AuthResult:
    if not reservation.allowed:
        return AuthResult(locked=True, retry_after=reservation.retry_after, address=address)
    guard = throttle()
    passwords().verify(_dummy_hash(current_app), password)  # same cost as a known account
    guard.failed(reservation)
    guard.failed(address)
    return AuthResult(address=address, account=reservation)


def _audit_failure(session: Session, ident: Identification, result: AuthResult) -> None:
    reason = "locked" if result.locked else ("password" if ident.candidates else "unknown")
    actor = ident.candidates[0].id if len(ident.candidates) == 1 else None
    audit.record(
        session, "login.failed", actor=actor, data={"method": ident.method, "reason": reason}
    )
    session.commit()


def succeeded(declarant_id: str, *, acr: str, amr: list[str], method: str) -> Event:
    """The audit event of a successful login, whoever writes it (:func:`finish_login`, or
    the lean path: :mod:`idp.auth.lean_login`)."""
    return ("login.succeeded", declarant_id, None, {"method": method, "acr": acr, "amr": amr})


def finish_login(
    session: Session,
    declarant: Declarant,
    *,
    acr: str,
    amr: list[str],
    method: str,
    next_url: str | None,
) -> Response:
    """Open a fresh SSO session (the old cookie's session ends), audit, redirect to ``next``."""
    opened = sessions.open_session(
        session, declarant.id, acr=acr, amr=amr, replaces=request.cookies.get(sessions.COOKIE)
    )
    kind, actor, _target, data = succeeded(declarant.id, acr=acr, amr=amr, method=method)
    audit.record(session, kind, actor=actor, data=data)
    session.commit()
    return logged_in(next_url, opened.cookie)


def logged_in(next_url: str | None, cookie: str) -> Response:
    """The answer to a login that opened a session: 303 to ``next`` with the cookie."""
    response = Response(status=303, headers={"Location": local_target(next_url)})
    sessions.set_cookie(response, cookie)
    return response


# ------------------------------------------------------------------ pages


def _render(status: int = 200, **context: object) -> tuple[str, int]:
    context.setdefault("next_url", local_target(request.values.get("next")))
    context.setdefault("force", request.values.get("force") == "1")
    return render_template("login.html", **context), status


def too_many(retry_after: int, template: str = "login.html", **context: object) -> Response:
    """HTTP 429 with ``Retry-After`` and a French message saying the login is blocked."""
    context.setdefault("next_url", local_target(request.values.get("next")))
    context.setdefault("force", request.values.get("force") == "1")
    message = _(TOO_MANY, minutes=max(1, (retry_after + 59) // 60))
    response = Response(render_template(template, error=message, **context), status=429)
    response.headers["Retry-After"] = str(retry_after)
    return response


@bp.get("/connexion")
def connexion() -> BaseResponse | tuple[str, int]:
    """The login page; with a live session (and no ``force=1``) goes straight to ``next``."""
    if request.args.get("force") != "1" and authenticated_declarant() is not None:
        return redirect(local_target(request.args.get("next")), code=302)
    return _render()


def identified(session: Session, form: MultiDict[str, str]) -> tuple[Identification, str]:
    """Whom the login form names, and the password typed (the route's reading of the form,
    and the lean path's: :mod:`idp.auth.lean_login`)."""
    password = (form.get("mot_de_passe") or "")[:1024]
    if form.get("courriel") is not None:
        return by_email(session, form_field("courriel", form)), password
    names = (form_field(name, form) for name in ("siret", "nom", "prenom"))
    return by_siret(session, *names), password


@bp.post("/connexion")
def connexion_post() -> Response | tuple[str, int]:
    session = db.session()
    ident, password = identified(session, request.form)
    # a failed attempt the lean path made is answered here, never tried again
    result = request.environ.pop(HANDED_OVER, None) or authenticate(session, ident, password)
    if result.declarant is None:
        _audit_failure(session, ident, result)
        if result.locked:
            return too_many(result.retry_after, method=ident.method)
        return _render(error=_(BAD_CREDENTIALS), method=ident.method)
    declarant = result.declarant
    if declarant.totp_secret:
        return _ask_code(session, declarant, ident.method)
    assert result.account is not None
    throttle().succeeded(result.account, result.address)
    return finish_login(
        session,
        declarant,
        acr=ACR_PASSWORD,
        amr=["pwd"],
        method=ident.method,
        next_url=request.form.get("next"),
    )


# ------------------------------------------------------------------ second factor step


def secret_digest(value: str) -> str:
    """SHA-256 hex of a one-time secret: links and pending logins are stored only hashed."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _ask_code(session: Session, declarant: Declarant, method: str) -> Response | tuple[str, int]:
    """Password right, TOTP enrolled: a single-use pending token (5 min) and the code form.
    The account counter is not reset until the code is right (no free code guesses)."""
    token = secrets.token_urlsafe(32)
    session.add(
        OneTimeSecret(
            secret_hash=secret_digest(token),
            purpose="mfa",
            declarant_id=declarant.id,
            expires_at=datetime.now(UTC) + MFA_LIFETIME,
        )
    )
    session.commit()
    return render_template(
        "totp_login.html",
        pending=token,
        method=method,
        next_url=local_target(request.form.get("next")),
    ), 200


def _pending(session: Session, token: str) -> OneTimeSecret | None:
    row = session.get(OneTimeSecret, secret_digest(token)) if token and len(token) < 100 else None
    if row is None or row.purpose != "mfa" or row.used_at is not None:
        return None
    if row.expires_at is None or row.expires_at <= datetime.now(UTC):
        return None
    return row


@bp.post("/connexion/code")
def connexion_code() -> Response | tuple[str, int]:
    """Second step: the TOTP code (or a recovery code), under the budgets of
    :meth:`idp.auth.throttle.Throttle.reserve_code` (address, account, the account's codes
    from any address, and 5 wrong codes per pending login, which then ends)."""
    session = db.session()
    token = form_field("attente")
    pending = _pending(session, token)
    next_url = local_target(request.form.get("next"))
    if pending is None:
        return _render(error=_(PENDING_EXPIRED))
    declarant = session.get(Declarant, pending.declarant_id)
    if declarant is None or not declarant.totp_secret:
        return _render(error=_(BAD_CREDENTIALS))
    session.commit()  # hand the connection back before the throttle takes its own
    guard = throttle()
    attempt = guard.reserve_code(declarant.id, client_address(), pending=pending.secret_hash)
    if attempt.pending_spent:
        _end_pending(session, pending.secret_hash)
        session.commit()
        return _render(error=_(PENDING_EXPIRED))
    if not attempt.allowed:
        return too_many(
            attempt.retry_after, template="totp_login.html", pending=token, next_url=next_url
        )
    if not second_factor.check_second_factor(session, declarant, form_field("code")):
        return _wrong_code(session, declarant, attempt, token, next_url)
    if not _end_pending(session, pending.secret_hash):
        session.rollback()
        return _render(error=_(PENDING_EXPIRED))
    session.commit()
    guard.code_succeeded(attempt)
    return finish_login(
        session, declarant, acr=ACR_TOTP, amr=["pwd", "otp"], method="totp", next_url=next_url
    )


def _end_pending(session: Session, secret_hash: str) -> bool:
    """Mark the pending login used (one conditional UPDATE: once only, even concurrently);
    False when it already was. The caller commits."""
    ended = session.execute(
        update(OneTimeSecret)
        .where(OneTimeSecret.secret_hash == secret_hash, OneTimeSecret.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
    )
    return rows_affected(ended) == 1


def _wrong_code(
    session: Session, declarant: Declarant, attempt: CodeAttempt, token: str, next_url: str
) -> Response | tuple[str, int]:
    """A wrong code fails every budget; the pending login ends with its last one."""
    session.rollback()
    spent = throttle().code_failed(attempt)
    audit.record(
        session, "login.failed", actor=declarant.id, data={"method": "totp", "reason": "code"}
    )
    if spent:
        _end_pending(session, secret_digest(token))
    session.commit()
    if spent:
        return _render(error=_(CODES_SPENT))
    return render_template(
        "totp_login.html",
        pending=token,
        next_url=next_url,
        error=_(
            "Code incorrect : saisissez le code affiché par votre application ou un code de secours."
        ),
    ), 200


# ------------------------------------------------------------------ logout


@bp.get("/deconnexion")
def deconnexion() -> str:
    """A confirm button (logout is a POST with its CSRF token: a link cannot log you out)."""
    return render_template("logout.html", confirm=authenticated_declarant() is not None, urls=[])


@bp.post("/deconnexion")
def deconnexion_post() -> Response:
    """End the SSO session, clear the cookie, and load every partner's front-channel logout
    URL (computed before the session row is deleted)."""
    session = db.session()
    row = sessions.current_session()
    urls: list[str] = []
    if row is not None:
        urls = sessions.logout_urls(row)
        declarant_id = row.declarant_id
        sessions.end_session(session, row)
        audit.record(session, "logout", actor=declarant_id, data={"partners": len(urls)})
        session.commit()
    response = Response(render_template("logout.html", confirm=False, urls=urls))
    sessions.clear_cookie(response)
    return response
