"""The administration's actions (POST, each behind the CSRF check): invite, set the
matrix's habilitations, suspend / reactivate / remove a declarant, name or remove an
administrator, hand the administration over. A refused action shows the page again
with the French reason and the status the domain gives (400, 404, 409), and changes
nothing (the transaction is rolled back)."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, render_template, request
from flask.typing import ResponseReturnValue

from idp.admin.common import (
    MAX_FIELD,
    actor,
    address,
    back,
    bp,
    company,
    finished,
    refused,
    text,
)
from idp.admin.pages import MAX_ID, declarant_context
from idp.stores import db
from idp.stores.sealing import app_sealer
from rcd_store import administration as adm
from rcd_store.administration.access import Forbidden
from rcd_store.administration.matrix import Change
from rcd_store.errors import DirectoryError

#: the declarant actions of the detail page, by their URL word
MEMBER_ACTIONS: dict[str, Callable[..., None]] = {
    "suspendre": adm.suspend_declarant,
    "reactiver": adm.reactivate_declarant,
    "retirer": adm.remove_declarant,
    "administrateur": adm.add_admin,
    "fin-administrateur": adm.remove_admin,
}
MAX_CELLS = 2000


def _refusal(exc: DirectoryError) -> int:
    db.session().rollback()
    if isinstance(exc, Forbidden):
        abort(403)
    return exc.http_status


@bp.post("/entreprises/<int:company_id>/inviter")
def invite_post(company_id: int) -> ResponseReturnValue:
    place = company(company_id)
    form = {
        name: text(name, source="form", limit=MAX_FIELD) for name in ("nom", "prenom", "courriel")
    }
    try:
        adm.invite_declarant(
            db.session(),
            company_id=place.id,
            actor=actor().id,
            last_name=form["nom"],
            first_name=form["prenom"],
            email=form["courriel"],
            sealer=app_sealer(),
            base_url=current_app.config["BASE_URL"],
            address=address(),
        )
    except DirectoryError as exc:
        status = _refusal(exc)
        return render_template(
            "admin/invite.html", company=place, form=form, error=refused(exc.message)
        ), status
    db.session().commit()
    return back("administration.declarants", "invitation", company_id=place.id, statut="pending")


def _cell(value: str) -> tuple[str, str, str]:
    siret, _, rest = value.partition("|")
    code, _, role = rest.partition("|")
    if not (siret and code and role) or len(value) > 80:
        abort(400, description=refused(f"case de la matrice invalide : {value[:80]}"))
    return siret, code, role


def _changes() -> list[Change]:
    """The matrix's cells shown on the page, each wanted ticked or not."""
    shown = request.form.getlist("cellule")
    if len(shown) > MAX_CELLS:
        abort(400, description=refused("trop de cases à la fois"))
    ticked = set(request.form.getlist("accorde"))
    return [Change(*_cell(value), granted=value in ticked) for value in shown]


@bp.post("/entreprises/<int:company_id>/declarants/<declarant_id>/habilitations")
def habilitations_post(company_id: int, declarant_id: str) -> ResponseReturnValue:
    place = company(company_id)
    if len(declarant_id) > MAX_ID:
        abort(404)
    changes = _changes()
    try:
        adm.set_habilitations(
            db.session(),
            company_id=place.id,
            actor=actor().id,
            declarant_id=declarant_id,
            changes=changes,
            address=address(),
        )
    except DirectoryError as exc:
        return _again(company_id, declarant_id, exc)
    db.session().commit()
    return back(
        "administration.declarant",
        "habilitations",
        company_id=place.id,
        declarant_id=declarant_id,
        q=text("q", source="form") or None,
        page=text("page", source="form", limit=6) or None,
    )


def _again(company_id: int, declarant_id: str, exc: DirectoryError) -> ResponseReturnValue:
    """The declarant page again, with the reason of the refusal."""
    status = _refusal(exc)
    if status == 404:
        abort(404)
    context = declarant_context(company_id, declarant_id)
    return render_template("admin/declarant.html", error=refused(exc.message), **context), status


def _member_change(
    change: Callable[..., None], company_id: int, declarant_id: str
) -> ResponseReturnValue | None:
    """Apply a change about one declarant of the company; the page again on refusal."""
    place = company(company_id)
    if len(declarant_id) > MAX_ID:
        abort(404)
    try:
        change(
            db.session(),
            company_id=place.id,
            declarant_id=declarant_id,
            actor=actor().id,
            address=address(),
        )
    except DirectoryError as exc:
        return _again(company_id, declarant_id, exc)
    db.session().commit()
    return None


@bp.post(
    "/entreprises/<int:company_id>/declarants/<declarant_id>/"
    "<any(suspendre, reactiver, retirer, administrateur, 'fin-administrateur'):action>"
)
def member_post(company_id: int, declarant_id: str, action: str) -> ResponseReturnValue:
    refusal = _member_change(MEMBER_ACTIONS[action], company_id, declarant_id)
    if refusal is not None:
        return refusal
    if action == "retirer":
        return back("administration.declarants", action, company_id=company_id)
    if action == "fin-administrateur" and declarant_id == actor().id:
        return finished(action)
    return back(
        "administration.declarant", action, company_id=company_id, declarant_id=declarant_id
    )


@bp.post("/entreprises/<int:company_id>/declarants/<declarant_id>/identite")
def names_post(company_id: int, declarant_id: str) -> ResponseReturnValue:
    """Correct a declarant's names (an identity change, told to the partners)."""
    place = company(company_id)
    if len(declarant_id) > MAX_ID:
        abort(404)
    try:
        adm.correct_names(
            db.session(),
            company_id=place.id,
            declarant_id=declarant_id,
            actor=actor().id,
            last_name=text("nom", source="form"),
            first_name=text("prenom", source="form"),
            address=address(),
        )
    except DirectoryError as exc:
        return _again(company_id, declarant_id, exc)
    db.session().commit()
    return back(
        "administration.declarant", "identite", company_id=place.id, declarant_id=declarant_id
    )


@bp.post("/entreprises/<int:company_id>/passation")
def hand_over_post(company_id: int) -> ResponseReturnValue:
    chosen = text("declarant", source="form", limit=MAX_ID)
    return _member_change(adm.hand_over, company_id, chosen) or finished("passation")
