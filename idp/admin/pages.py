"""The administration's pages (GET): the companies administered, a company's
establishments and declarants (paginated, searchable), one establishment's declarants
and rights, one declarant with the habilitation matrix, the invitation and hand-over
forms. Each page costs a bounded number of statements whatever the company's size."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import abort, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from idp.admin.common import (
    PER_PAGE,
    actor,
    bp,
    company,
    done_message,
    join_requests_url,
    number,
    refused,
    text,
)
from idp.stores import db
from rcd_store import administration as adm
from rcd_store.administration.listing import STATUSES
from rcd_store.administration.roles import member
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.models import Company

MAX_ID = 40
T = TypeVar("T")


@bp.get("/")
def home() -> ResponseReturnValue:
    """The companies the actor administers; none: 403 (a plain declarant)."""
    session = db.session()
    ids = adm.admin_company_ids(session, actor().id)
    if not ids:
        abort(403)
    companies = session.scalars(select(Company).where(Company.id.in_(ids)).order_by(Company.name))
    return render_template(
        "admin/home.html",
        companies=[(c, join_requests_url(c.id)) for c in companies],
    )


@bp.get("/entreprises/<int:company_id>")
def company_page(company_id: int) -> ResponseReturnValue:
    place = company(company_id)
    return render_template(
        "admin/company.html", company=place, join_requests=join_requests_url(place.id)
    )


@contextmanager
def answered() -> Iterator[None]:
    """A page's domain refusals as HTTP answers: an id unknown in the company 404, a bad
    search or page 400 with the domain's French reason."""
    try:
        yield
    except NotFound:
        abort(404)
    except DirectoryError as exc:
        abort(400, description=refused(exc.message))


def _listed(call: Callable[..., T], **kwargs: Any) -> T:
    with answered():
        return call(db.session(), **kwargs)


@bp.get("/entreprises/<int:company_id>/etablissements")
def establishments(company_id: int) -> ResponseReturnValue:
    place = company(company_id)
    query = text("q")
    found = _listed(
        adm.list_establishments,
        company_id=place.id,
        query=query,
        page=number("page"),
        per_page=PER_PAGE,
    )
    return render_template("admin/establishments.html", company=place, q=query, found=found)


def _status() -> str:
    status = text("statut", limit=20)
    if status and status not in STATUSES:
        abort(400, description=refused(f"statut inconnu : {status}"))
    return status


@bp.get("/entreprises/<int:company_id>/declarants")
def declarants(company_id: int) -> ResponseReturnValue:
    place = company(company_id)
    query, status = text("q"), _status()
    found = _listed(
        adm.list_declarants,
        company_id=place.id,
        query=query,
        status=status,
        page=number("page"),
        per_page=PER_PAGE,
    )
    return render_template(
        "admin/declarants.html",
        company=place,
        q=query,
        statut=status,
        found=found,
        statuses=STATUSES,
        done=done_message(),
    )


@bp.get("/entreprises/<int:company_id>/etablissements/<int:establishment_id>")
def establishment(company_id: int, establishment_id: int) -> ResponseReturnValue:
    place = company(company_id)
    query, status = text("q"), _status()
    with answered():
        site, matrix = adm.establishment_matrix(
            db.session(),
            place.id,
            establishment_id=establishment_id,
            query=query,
            status=status,
            page=number("page"),
            per_page=PER_PAGE,
        )
    return render_template(
        "admin/establishment.html",
        company=place,
        site=site,
        matrix=matrix,
        q=query,
        statut=status,
        statuses=STATUSES,
    )


def declarant_context(company_id: int, declarant_id: str) -> dict[str, object]:
    """What the declarant page shows: the person, their role, the matrix of a page of
    establishments (``q``, ``page``); 403 / 404 / 400 as the ids and query deserve."""
    place = company(company_id)
    if len(declarant_id) > MAX_ID:
        abort(404)
    session = db.session()
    query = text("q")
    with answered():
        role, person = member(session, place.id, declarant_id)
        matrix = adm.declarant_matrix(
            session,
            place.id,
            declarant_id=person.id,
            query=query,
            page=number("page"),
            per_page=PER_PAGE,
        )
    return {
        "company": place,
        "person": person,
        "role": role.role,
        "matrix": matrix,
        "q": query,
        "is_self": person.id == actor().id,
    }


@bp.get("/entreprises/<int:company_id>/declarants/<declarant_id>")
def declarant(company_id: int, declarant_id: str) -> ResponseReturnValue:
    context = declarant_context(company_id, declarant_id)
    return render_template("admin/declarant.html", done=done_message(), **context)


@bp.get("/entreprises/<int:company_id>/inviter")
def invite(company_id: int) -> ResponseReturnValue:
    return render_template("admin/invite.html", company=company(company_id), form={})


@bp.get("/entreprises/<int:company_id>/passation")
def hand_over(company_id: int) -> ResponseReturnValue:
    """Confirm handing the administration over to the declarant ``?declarant=``."""
    place = company(company_id)
    chosen = text("declarant", limit=MAX_ID)
    with answered():
        _, person = member(db.session(), place.id, chosen)
    return render_template("admin/hand_over.html", company=place, person=person)
