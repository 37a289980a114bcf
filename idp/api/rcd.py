"""The partners' read API of the directory (scope ``rcd.read``): the establishments,
declarants and habilitations concerning the services the calling client's partner
shares (its service agreement in the registry), and nothing else: a declarant who holds
no right in force on those services is unknown to it, by list and by id."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request

from idp.api import problems
from idp.api.bearer import READ_SCOPE, caller
from idp.api.problems import DECLARANT_ID
from idp.stores import db
from idp.web.answers import no_store
from partners.services import services_of
from rcd_store.shared import reads

bp = Blueprint("api_rcd", __name__, url_prefix="/api/v1/rcd")
problems.attach(bp)


def _shared() -> list[int]:
    """The ids of the services the caller's partner shares."""
    who = caller(READ_SCOPE)
    return [s.id for s in services_of(db.session(), who.client.partner)]


def _answer(body: dict[str, Any]) -> Response:
    return no_store(jsonify(body))


def _rows(page: Any) -> Response:
    rows = [{k: _plain(v) for k, v in asdict(item).items()} for item in page.items]
    return _answer(problems.page_body(page, rows))


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@bp.get("/etablissements")
def establishments() -> Response:
    """Establishments where someone holds a right in force on a shared service."""
    shared = _shared()
    page, per_page = problems.page_args()
    return _rows(reads.establishments(db.session(), shared, page=page, per_page=per_page))


@bp.get("/declarants")
def declarants() -> Response:
    """Declarants holding a right in force on a shared service."""
    shared = _shared()
    page, per_page = problems.page_args()
    return _rows(reads.declarants(db.session(), shared, page=page, per_page=per_page))


@bp.get("/declarants/<declarant_id>")
def declarant(declarant_id: str) -> Response:
    """One such declarant by id (404 for anyone else)."""
    shared = _shared()
    checked = problems.matching(declarant_id, "declarant_id", DECLARANT_ID, limit=40)
    found = reads.declarant(db.session(), shared, checked)
    return _answer(asdict(found))


@bp.get("/habilitations")
def habilitations() -> Response:
    """Rights in force on the shared services (filter by ``service``, ``siret``)."""
    shared = _shared()
    page, per_page = problems.page_args()
    service = request.args.get("service")
    code = problems.service_code(service) if service is not None else None
    siret = request.args.get("siret")
    found = reads.rights(
        db.session(),
        shared,
        page=page,
        per_page=per_page,
        service_code=code,
        siret=problems.siret(siret) if siret is not None else None,
    )
    return _rows(found)
