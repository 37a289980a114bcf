"""The administrators' pages of enrolment (``/administration/demandes``): the pending
join requests of a company they administer (accept with habilitations, or refuse;
the person is told by email) and its candidate administrators (co-opt).

Every page and action asks :func:`rcd_store.administration.access.require_admin` for
the company named in the request: an administrator of another company, or a declarant
who administers none, gets 403 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, redirect, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.login import authenticated_declarant, form_field, login_required
from idp.enrolment import forms, messages
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.administration.access import Forbidden, admin_company_ids, require_admin
from rcd_store.enrolment import enrol, joins
from rcd_store.errors import DirectoryError
from rcd_store.models import HabilitationRole, Service

bp = Blueprint("enrolment_admin", __name__)
bp.after_request(no_store)
bp.before_request(forms.remember_address)

PAGE = "enrolment/admin.html"
LIST = "/administration/demandes"
#: habilitation rows offered by the accept form
ROWS = 3


def _actor() -> str | None:
    who = authenticated_declarant()
    return who[1].id if who else None


def _company_id(raw: str | None, actor: str) -> int:
    """The company named by the request (or the first one administered); 403 when the
    actor administers it not."""
    administered = sorted(admin_company_ids(db.session(), actor))
    if raw is None or raw == "":
        if not administered:
            abort(403)
        return administered[0]
    if not raw.isdigit() or len(raw) > 12:
        abort(403)
    return int(raw)


def _page(actor: str, company_id: int, status: int = 200, **context: object) -> ResponseReturnValue:
    session = db.session()
    try:
        company = require_admin(session, actor_id=actor, company_id=company_id)
    except Forbidden:
        abort(403)
    services = session.scalars(
        select(Service).where(Service.state != "closed").order_by(Service.name)
    )
    return render_template(
        PAGE,
        company=company,
        requests=joins.pending_joins(session, company.id),
        candidates=enrol.candidates(session, company.id),
        services=list(services),
        roles=[role.value for role in HabilitationRole],
        rows=range(ROWS),
        done=request.args.get("fait"),
        **context,
    ), status


@bp.get(LIST)
def requests_page() -> ResponseReturnValue:
    actor = _actor()
    if actor is None:
        return login_required(LIST)
    return _page(actor, _company_id(request.args.get("entreprise"), actor))


def _chosen() -> list[tuple[str, str, str]]:
    """The habilitation rows filled in (a row without SIRET or service is left out)."""
    chosen = []
    for row in range(ROWS):
        siret, service = form_field(f"siret_{row}"), form_field(f"service_{row}")
        if siret and service:
            chosen.append((siret, service, form_field(f"role_{row}") or "DECLARANT"))
    return chosen


def _act(change: Callable[[Session, str, int], str]) -> ResponseReturnValue:
    """Run an administrator's ``change`` (session, actor, company id) -> outcome, for the
    company posted; 403 when the actor administers it not; the list again after."""
    actor = _actor()
    if actor is None:
        return login_required(LIST)
    session = db.session()
    company_id = _company_id(form_field("entreprise"), actor)
    try:
        require_admin(session, actor_id=actor, company_id=company_id)
        outcome = change(session, actor, company_id)
    except Forbidden:
        session.rollback()
        abort(403)
    except DirectoryError as exc:
        session.rollback()
        return _page(actor, company_id, 400, error=exc.message)
    session.commit()
    return redirect(f"{LIST}?entreprise={company_id}&fait={outcome}", code=303)


def _decide(request_id: int, accept: bool) -> ResponseReturnValue:
    def change(session: Session, actor: str, _company_id: int) -> str:
        if accept:
            decided = joins.accept_join(
                session, request_id=request_id, actor=actor, habilitations=_chosen()
            )
        else:
            decided = joins.refuse_join(session, request_id=request_id, actor=actor)
        messages.join_decision_email(session, decided)
        return "acceptee" if accept else "refusee"

    return _act(change)


@bp.post(f"{LIST}/<int:request_id>/accepter")
def accept(request_id: int) -> ResponseReturnValue:
    return _decide(request_id, True)


@bp.post(f"{LIST}/<int:request_id>/refuser")
def refuse(request_id: int) -> ResponseReturnValue:
    return _decide(request_id, False)


@bp.post("/administration/candidats/coopter")
def co_opt() -> ResponseReturnValue:
    def change(session: Session, actor: str, company_id: int) -> str:
        candidate = form_field("declarant")
        enrol.co_opt(session, company_id=company_id, candidate_id=candidate, actor=actor)
        return "coopte"

    return _act(change)
