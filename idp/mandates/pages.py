"""The mandate pages, under ``/administration/entreprises/<id>/mandats``: login
required, the company checked against the actor on every request (403 otherwise, the
same for an unknown id), CSRF on every form, post/redirect/get after each change."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.auth.login import authenticated_declarant, login_required
from idp.i18n import N_, _
from idp.mandates.forms import field, grant_terms
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.administration import list_declarants
from rcd_store.administration.access import Forbidden, require_admin
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.mandates import delegation
from rcd_store.mandates.lifecycle import KINDS
from rcd_store.models import Company, Service, ServiceState

bp = Blueprint(
    "mandates", __name__, url_prefix="/administration/entreprises/<int:company_id>/mandats"
)
bp.after_request(no_store)

DONE = {
    "accorde": N_("Mandat accordé."),
    "fin": N_("Mandat terminé : les habilitations qu'il portait sont révoquées."),
    "habilite": N_("Habilitation accordée."),
    "revoque": N_("Habilitation révoquée."),
}
KIND_LABELS = {
    "cabinet": N_("Cabinet d'expertise comptable"),
    "cga_aga": N_("Centre ou association de gestion agréé (CGA/AGA)"),
    "concentrateur": N_("Éditeur de logiciel de paie, concentrateur DSN"),
}
MAX_LISTED = 200


@bp.before_request
def _gate() -> BaseResponse | None:
    """Anonymous visitors log in first (and come back)."""
    if authenticated_declarant() is None:
        return login_required(request.path)
    return None


def _actor() -> str:
    who = authenticated_declarant()
    assert who is not None  # the gate ran
    return who[1].id


def _company(company_id: int) -> Company:
    try:
        return require_admin(db.session(), actor_id=_actor(), company_id=company_id)
    except Forbidden:
        abort(403)


def _page_number(name: str) -> int:
    raw = request.args.get(name, "1")
    if not raw.isdigit() or len(raw) > 6 or int(raw) < 1:
        abort(400, description=_("Numéro de page invalide."))
    return int(raw)


def _back(company_id: int, key: str, **values: Any) -> BaseResponse:
    endpoint = "mandates.mandate_page" if "mandate_id" in values else "mandates.index"
    return redirect(url_for(endpoint, company_id=company_id, fait=key, **values), code=303)


def _open_services() -> list[Service]:
    session = db.session()
    stmt = select(Service).where(Service.state != ServiceState.CLOSED.value).order_by(Service.code)
    return list(session.scalars(stmt.limit(MAX_LISTED)))


def _index(company_id: int, *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    company = _company(company_id)
    session, actor = db.session(), _actor()
    lists = {
        side: delegation.list_mandates(
            session, actor=actor, company_id=company.id, side=side, page=_page_number(side)
        )
        for side in delegation.SIDES
    }
    key = request.args.get("fait", "")
    page = render_template(
        "mandates/index.html",
        company=company,
        given=lists["client"],
        received=lists["firm"],
        services=_open_services(),
        kinds=[(kind, _(KIND_LABELS[kind])) for kind in KINDS],
        form=request.form,
        done=_(DONE[key]) if key in DONE else None,
        error=error,
    )
    return page, status


@bp.get("")
def index(company_id: int) -> ResponseReturnValue:
    """The mandates granted and received, and the form to grant one."""
    return _index(company_id)


def _refused(exc: DirectoryError) -> str:
    return _("Opération refusée : {reason}.", reason=exc.message)


def _change(
    change: Callable[[], object], shown: Callable[..., ResponseReturnValue]
) -> ResponseReturnValue | None:
    """Run ``change``; a refusal shows the page again with its French reason and the
    error's status (403, 404, 409 or 400), nothing changed; ``None`` once committed."""
    session = db.session()
    try:
        change()
    except DirectoryError as exc:
        session.rollback()
        return shown(error=_refused(exc), status=exc.http_status)
    session.commit()
    return None


@bp.post("")
def grant(company_id: int) -> ResponseReturnValue:
    """The client company's administrator grants a mandate."""
    company = _company(company_id)

    def change() -> object:
        firm, terms = grant_terms()
        return delegation.grant(
            db.session(), actor=_actor(), company_id=company.id, firm_siren=firm, terms=terms
        )

    refused = _change(change, partial(_index, company_id))
    return refused or _back(company_id, "accorde")


def _side() -> delegation.Side:
    side = request.form.get("cote", "client")
    if side not in delegation.SIDES:
        abort(400)
    return side


@bp.post("/<int:mandate_id>/fin")
def end(company_id: int, mandate_id: int) -> ResponseReturnValue:
    """End a mandate (the client), or renounce it (the mandataire)."""
    company, side = _company(company_id), _side()

    def change() -> object:
        return delegation.end(
            db.session(), actor=_actor(), company_id=company.id, mandate_id=mandate_id, side=side
        )

    refused = _change(change, partial(_index, company_id))
    return refused or _back(company_id, "fin")


def _mandate_page(
    company_id: int, mandate_id: int, *, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    company = _company(company_id)
    session, actor = db.session(), _actor()
    try:
        mandate = delegation.find(
            session, actor=actor, company_id=company.id, mandate_id=mandate_id, side="firm"
        )
    except NotFound:
        abort(404)
    members = list_declarants(session, company.id, page=1, per_page=MAX_LISTED)
    key = request.args.get("fait", "")
    page = render_template(
        "mandates/mandate.html",
        company=company,
        mandate=delegation.describe(mandate),
        rights=delegation.rights_under(session, mandate),
        members=[m for m in members.items if m.role != "CANDIDAT_AD"],
        more_members=members.total > MAX_LISTED,
        done=_(DONE[key]) if key in DONE else None,
        error=error,
        form=request.form,
    )
    return page, status


@bp.get("/<int:mandate_id>")
def mandate_page(company_id: int, mandate_id: int) -> ResponseReturnValue:
    """A received mandate: the rights it carries and the form to habilitate."""
    return _mandate_page(company_id, mandate_id)


@bp.post("/<int:mandate_id>/habilitations")
def habilitate(company_id: int, mandate_id: int) -> ResponseReturnValue:
    """The mandataire's administrator habilitates one of its declarants."""
    company = _company(company_id)

    def change() -> object:
        return delegation.habilitate(
            db.session(),
            actor=_actor(),
            company_id=company.id,
            mandate_id=mandate_id,
            declarant_id=field("declarant", 40),
            siret=field("siret", 20).replace(" ", ""),
            service_code=field("service", 40),
            role=field("role", 20) or "DECLARANT",
        )

    refused = _change(change, partial(_mandate_page, company_id, mandate_id))
    return refused or _back(company_id, "habilite", mandate_id=mandate_id)


@bp.post("/<int:mandate_id>/habilitations/<int:habilitation_id>/revocation")
def unhabilitate(company_id: int, mandate_id: int, habilitation_id: int) -> ResponseReturnValue:
    """Revoke a habilitation carried by the mandate."""
    session = db.session()
    try:
        delegation.unhabilitate(
            session,
            actor=_actor(),
            company_id=_company(company_id).id,
            mandate_id=mandate_id,
            habilitation_id=habilitation_id,
        )
    except NotFound:
        abort(404)
    session.commit()
    return _back(company_id, "revoque", mandate_id=mandate_id)
