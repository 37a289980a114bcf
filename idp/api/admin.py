"""The administration API (scope ``rcd.admin``): an administrator's own tool acts with
that administrator's OAuth 2 access token, under the same rules as the pages (every
call through :func:`rcd_store.administration.access.require_admin` or the mandates'
domain functions, which call it): an administrator of company A reads and changes
nothing of company B, whatever id it sends."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from idp.api import problems
from idp.api.bearer import ADMIN_SCOPE, caller
from idp.api.problems import DECLARANT_ID
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.administration import list_declarants, list_establishments
from rcd_store.administration.access import admin_company_ids, require_admin
from rcd_store.administration.listing import STATUSES
from rcd_store.mandates import delegation, lifecycle
from rcd_store.models import Company, HabilitationRole

bp = Blueprint("api_admin", __name__, url_prefix="/api/v1/entreprises")
problems.attach(bp)

GRANT_MEMBERS = frozenset(
    {"firm_siren", "kind", "services", "establishments", "starts_at", "ends_at"}
)
HABILITATE_MEMBERS = frozenset({"declarant_id", "siret", "service", "role"})


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return no_store(response)


def _plain(row: Any) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in asdict(row).items()}


def _page(page: Any) -> Response:
    return _answer(problems.page_body(page, [_plain(item) for item in page.items]))


def _admin_of(company_id: str) -> tuple[str, int]:
    """The calling administrator and the company id of the path, checked."""
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    require_admin(db.session(), actor_id=actor, company_id=checked)
    return actor, checked


def _search() -> str | None:
    return problems.text(request.args.get("q"), "q", limit=100)


@bp.get("")
def companies() -> Response:
    """The companies the caller administers."""
    actor = caller(ADMIN_SCOPE).subject
    page, per_page = problems.page_args()
    session = db.session()
    ids = sorted(admin_company_ids(session, actor))
    chosen = ids[(page - 1) * per_page : page * per_page]
    rows = session.execute(
        select(Company.id, Company.siren, Company.name)
        .where(Company.id.in_(chosen))
        .order_by(Company.id)
    ).all()
    items = [{"id": r.id, "siren": r.siren, "name": r.name} for r in rows]
    return _answer({"items": items, "page": page, "per_page": per_page, "total": len(ids)})


@bp.get("/<company_id>/etablissements")
def establishments(company_id: str) -> Response:
    """The company's establishments, searched (SIRET prefix or address) and paged."""
    _actor, checked = _admin_of(company_id)
    page, per_page = problems.page_args()
    found = list_establishments(
        db.session(), checked, query=_search(), page=page, per_page=per_page
    )
    return _page(found)


@bp.get("/<company_id>/declarants")
def declarants(company_id: str) -> Response:
    """The company's declarants, searched (name or email start), by status, paged."""
    _actor, checked = _admin_of(company_id)
    page, per_page = problems.page_args()
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise problems.bad(f"« status » invalide ({', '.join(STATUSES)})")
    found = list_declarants(
        db.session(), checked, query=_search(), status=status, page=page, per_page=per_page
    )
    return _page(found)


def _side() -> delegation.Side:
    side = request.args.get("side", "client")
    if side not in delegation.SIDES:
        raise problems.bad("« side » invalide (client ou firm)")
    return side


@bp.get("/<company_id>/mandats")
def mandates(company_id: str) -> Response:
    """The mandates the company granted (``side=client``) or received (``side=firm``)."""
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    page, per_page = problems.page_args()
    found = delegation.list_mandates(
        db.session(),
        actor=actor,
        company_id=checked,
        side=_side(),
        page=page,
        per_page=per_page,
    )
    return _page(found)


def _terms(body: dict[str, Any]) -> tuple[str, lifecycle.Terms]:
    firm = problems.matching(body.get("firm_siren"), "firm_siren", problems.SIREN, limit=9)
    kind = body.get("kind", "cabinet")
    if kind not in lifecycle.KINDS:
        raise problems.bad(f"« kind » invalide ({', '.join(lifecycle.KINDS)})")
    services = problems.string_list(
        body.get("services"), "services", problems.service_code, most=50
    )
    sirets = problems.string_list(
        body.get("establishments"), "establishments", problems.siret, most=200
    )
    starts = problems.instant(body.get("starts_at"), "starts_at")
    ends = problems.instant(body.get("ends_at"), "ends_at")
    return firm, lifecycle.Terms(services, kind, sirets, starts, ends)


@bp.post("/<company_id>/mandats")
def grant_mandate(company_id: str) -> Response:
    """The client company's administrator grants a mandate (201)."""
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    firm, terms = _terms(problems.json_body(GRANT_MEMBERS))
    session = db.session()
    mandate = delegation.grant(
        session, actor=actor, company_id=checked, firm_siren=firm, terms=terms
    )
    session.commit()
    row = delegation.find(
        session, actor=actor, company_id=checked, mandate_id=mandate.id, side="client"
    )
    return _answer(_plain(delegation.describe(row)), 201)


@bp.post("/<company_id>/mandats/<mandate_id>/fin")
def end_mandate(company_id: str, mandate_id: str) -> Response:
    """End a mandate (the client) or renounce it (the mandataire, ``side=firm``): its
    habilitations are revoked at once."""
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    mandate = problems.path_id(mandate_id, "mandate_id")
    side = _side()
    session = db.session()
    revoked = delegation.end(
        session, actor=actor, company_id=checked, mandate_id=mandate, side=side
    )
    session.commit()
    return _answer({"mandate_id": mandate, "revoked": revoked})


@bp.post("/<company_id>/mandats/<mandate_id>/habilitations")
def habilitate(company_id: str, mandate_id: str) -> Response:
    """The mandataire's administrator habilitates one of its declarants on an
    establishment of the client, within the mandate (201 when new, 200 when held)."""
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    mandate = problems.path_id(mandate_id, "mandate_id")
    body = problems.json_body(HABILITATE_MEMBERS)
    role = body.get("role", HabilitationRole.DECLARANT.value)
    if role not in HabilitationRole.__members__:
        raise problems.bad("« role » invalide (DECLARANT ou CONSULTATION)")
    session = db.session()
    result = delegation.habilitate(
        session,
        actor=actor,
        company_id=checked,
        mandate_id=mandate,
        declarant_id=problems.matching(
            body.get("declarant_id"), "declarant_id", DECLARANT_ID, limit=40
        ),
        siret=problems.siret(body.get("siret")),
        service_code=problems.service_code(body.get("service"), "service"),
        role=role,
    )
    session.commit()
    body = {"habilitation_id": result.habilitation_id, "created": result.created}
    return _answer(body, 201 if result.created else 200)


@bp.get("/<company_id>/mandats/<mandate_id>/habilitations")
def mandate_rights(company_id: str, mandate_id: str) -> Response:
    """The habilitations carried by a mandate of the company (``side`` as for the list)."""
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    wanted = problems.path_id(mandate_id, "mandate_id")
    session = db.session()
    mandate = delegation.find(
        session, actor=actor, company_id=checked, mandate_id=wanted, side=_side()
    )
    rows = [_plain(row) for row in delegation.rights_under(session, mandate)]
    return _answer({"items": rows, "total": len(rows)})


@bp.post("/<company_id>/mandats/<mandate_id>/habilitations/<habilitation_id>/revocation")
def revoke_mandate_right(company_id: str, mandate_id: str, habilitation_id: str) -> Response:
    """Revoke a habilitation carried by the mandate (either side of it may)."""
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    wanted = problems.path_id(mandate_id, "mandate_id")
    right = problems.path_id(habilitation_id, "habilitation_id")
    session = db.session()
    delegation.unhabilitate(
        session, actor=actor, company_id=checked, mandate_id=wanted, habilitation_id=right
    )
    session.commit()
    return _answer({"habilitation_id": right, "revoked": True})
