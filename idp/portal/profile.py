"""The declarant's profile (``/profil``): correct their own names, change their email
address. Each form is a POST behind the CSRF check; a refused form changes nothing (the
transaction is rolled back) and says what is wrong beside each field.

A new address takes effect only once verified: the link sent to it (24 hours, once,
used by a button on ``/profil/courriel/confirmer``, not by opening it) carries the
address sealed under the master key; the current password is asked first, the requests
are rate-limited per client address as enrolment's (no mail bombing through the form),
and the current address is told of the request. Each change that takes effect is an
identity change, told to the partners sharing a service with the declarant.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from idp.auth.login import authenticated_declarant, client_address, login_required
from idp.auth.passwords import passwords
from idp.auth.throttle import throttle
from idp.enrolment.forms import Form, read_fields
from idp.enrolment.messages import page_link
from idp.i18n import N_, _
from idp.stores import db
from idp.stores.sealing import app_sealer
from idp.web.answers import no_store
from keys.crypto import KeyDecryptionError
from rcd_store import identity, outbox
from rcd_store.enrolment import codes
from rcd_store.errors import DirectoryError
from rcd_store.models import Declarant

bp = Blueprint("profile", __name__)
bp.after_request(no_store)

PAGE = "profile.html"
CONFIRM = "profile_confirm.html"
LIMITS = {"nom": 100, "prenom": 100, "courriel": 254, "mot_de_passe": 1024}
#: the sealed address of a link: 254 characters sealed, in base64url, fit in 400
MAX_SEALED = 400
_CONTEXT = b"email-change"
DONE = {
    "identite": N_("Votre identité est enregistrée."),
    "courriel": N_(
        "Un lien de confirmation est envoyé à la nouvelle adresse : elle remplacera "
        "l'actuelle quand vous l'aurez confirmée (24 heures pour le faire)."
    ),
}


def _page(person: Declarant, form: Form | None = None, status: int = 200) -> tuple[str, int]:
    form = form or Form()
    values = {
        "nom": person.last_name,
        "prenom": person.first_name,
        **{k: v for k, v in form.values.items() if k != "mot_de_passe"},
    }
    key = request.args.get("fait", "")
    done = _(DONE[key]) if key in DONE and status == 200 else None
    return render_template(PAGE, person=person, form=form, values=values, done=done), status


def _refused(person_id: str, form: Form, exc: DirectoryError | None = None) -> ResponseReturnValue:
    """The page again, nothing changed, with the reasons."""
    session = db.session()
    session.rollback()
    if exc is not None:
        form.refuse(exc)
    person = session.get(Declarant, person_id)
    assert person is not None
    return _page(person, form, 400)


def _too_many(person: Declarant, form: Form, retry_after: int) -> ResponseReturnValue:
    minutes = max(1, (retry_after + 59) // 60)
    form.general = _(
        "Trop de demandes depuis votre adresse : réessayez dans {minutes} minute(s).",
        minutes=minutes,
    )
    page, status = _page(person, form, 429)
    return page, status, {"Retry-After": str(retry_after)}


@bp.get("/profil")
def show() -> ResponseReturnValue:
    who = authenticated_declarant()
    if who is None:
        return login_required("/profil")
    return _page(who[1])


@bp.post("/profil/identite")
def names_post() -> ResponseReturnValue:
    who = authenticated_declarant()
    if who is None:
        return login_required("/profil")
    person, form = who[1], read_fields(LIMITS)
    if form.errors.keys() & {"nom", "prenom"}:
        return _refused(person.id, form)
    try:
        identity.change_names(
            db.session(),
            declarant_id=person.id,
            last_name=form.values["nom"],
            first_name=form.values["prenom"],
            actor=person.id,
            address=client_address(),
        )
    except DirectoryError as exc:
        return _refused(person.id, form, exc)
    db.session().commit()
    return redirect(url_for("profile.show", fait="identite"), code=303)


def _seal(email: str) -> str:
    blob = app_sealer().seal(email.encode("utf-8"), context=_CONTEXT)
    return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")


def _unseal(value: str) -> str:
    """The address a link carries; :class:`codes.InvalidCode` for anything else."""
    try:
        if len(value) > MAX_SEALED:
            raise ValueError("too long")
        blob = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return app_sealer().open(blob, context=_CONTEXT).decode("utf-8")
    except (ValueError, binascii.Error, KeyDecryptionError):
        raise codes.InvalidCode("ce lien n'est pas valable (inconnu ou déjà utilisé)") from None


def _send(session: Session, change: identity.EmailChange) -> None:
    """The link to the new address; a word to the current one (if any)."""
    link = page_link("/profil/courriel/confirmer", jeton=change.secret, adresse=_seal(change.email))
    person = change.declarant
    messages: list[tuple[str, str, str | None]] = [
        ("email_change_verification", change.email, link)
    ]
    if person.email:
        messages.append(("email_change_notice", person.email, None))
    for kind, recipient, url in messages:
        body = render_template("email_change.txt", link=url, person=person, hours=24)
        outbox.put(
            session,
            app_sealer(),
            channel="email",
            kind=kind,
            recipient=recipient,
            subject=_("Changement de votre adresse électronique"),
            body=body,
            lifetime=identity.CHANGE_LIFETIME,
        )


@bp.post("/profil/courriel")
def email_post() -> ResponseReturnValue:
    who = authenticated_declarant()
    if who is None:
        return login_required("/profil")
    person, form = who[1], read_fields(LIMITS)
    reservation = throttle().reserve_address("email-change:" + client_address())
    if not reservation.allowed:
        return _too_many(person, form, reservation.retry_after)
    if form.errors.keys() & {"courriel", "mot_de_passe"}:
        return _refused(person.id, form)
    if not person.password_hash or not passwords().verify(
        person.password_hash, form.values["mot_de_passe"]
    ):
        form.errors["mot_de_passe"] = _("Mot de passe incorrect.")
        return _refused(person.id, form)
    session = db.session()
    try:
        change = identity.request_email_change(
            session,
            declarant_id=person.id,
            email=form.values["courriel"],
            actor=person.id,
            address=client_address(),
        )
    except DirectoryError as exc:
        form.errors["courriel"] = exc.message
        return _refused(person.id, form)
    _send(session, change)
    session.commit()
    return redirect(url_for("profile.show", fait="courriel"), code=303)


def _link() -> tuple[str, str]:
    source = request.form if request.method == "POST" else request.args
    token = (source.get("jeton") or "")[: codes.MAX_SECRET + 1]
    return token, (source.get("adresse") or "")[: MAX_SEALED + 1]


@bp.get("/profil/courriel/confirmer")
def confirm_form() -> ResponseReturnValue:
    token, sealed = _link()
    try:
        email = _unseal(sealed)
        identity.pending_change(db.session(), secret=token, email=email)
    except DirectoryError as exc:
        return render_template(CONFIRM, error=exc.message), 400
    return render_template(CONFIRM, token=token, sealed=sealed, email=email)


@bp.post("/profil/courriel/confirmer")
def confirm_post() -> ResponseReturnValue:
    token, sealed = _link()
    session = db.session()
    try:
        email = _unseal(sealed)
        identity.confirm_email_change(session, secret=token, email=email, address=client_address())
    except DirectoryError as exc:
        session.rollback()
        return render_template(CONFIRM, error=exc.message), 400
    session.commit()
    return render_template(CONFIRM, done=True, email=email)
