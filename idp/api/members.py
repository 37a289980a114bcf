"""The administration API's acts on a company's declarants (scope ``rcd.admin``):
suspend, reactivate, and set habilitations, each through the administration's domain
functions (:mod:`rcd_store.administration`: the actor checked on the locked company,
audited, the last administrator kept)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from idp.api import problems
from idp.api.bearer import ADMIN_SCOPE, caller
from idp.api.problems import DECLARANT_ID
from idp.auth.login import client_address
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.administration import (
    Change,
    reactivate_declarant,
    set_habilitations,
    suspend_declarant,
)
from rcd_store.models import HabilitationRole

bp = Blueprint("api_members", __name__, url_prefix="/api/v1/entreprises")
problems.attach(bp)

MAX_CHANGES = 200
CHANGE_MEMBERS = frozenset({"siret", "service", "role", "granted"})


def _target(company_id: str, declarant_id: str) -> tuple[str, int, str]:
    actor = caller(ADMIN_SCOPE).subject
    checked = problems.path_id(company_id, "company_id")
    person = problems.matching(declarant_id, "declarant_id", DECLARANT_ID, limit=40)
    return actor, checked, person


def _done(body: dict[str, Any]) -> Response:
    db.session().commit()
    return no_store(jsonify(body))


def _set_status(company_id: str, declarant_id: str, act: Any, status: str) -> Response:
    actor, checked, person = _target(company_id, declarant_id)
    act(
        db.session(), company_id=checked, declarant_id=person, actor=actor, address=client_address()
    )
    return _done({"declarant_id": person, "status": status})


@bp.post("/<company_id>/declarants/<declarant_id>/suspension")
def suspend(company_id: str, declarant_id: str) -> Response:
    """Suspend a declarant of the company (no more login)."""
    return _set_status(company_id, declarant_id, suspend_declarant, "disabled")


@bp.post("/<company_id>/declarants/<declarant_id>/reactivation")
def reactivate(company_id: str, declarant_id: str) -> Response:
    """Give a suspended declarant of the company back their access."""
    return _set_status(company_id, declarant_id, reactivate_declarant, "active")


def _change(value: Any, name: str) -> Change:
    if not isinstance(value, dict) or set(value) - CHANGE_MEMBERS:
        raise problems.bad(f"« {name} » invalide : objets siret, service, role, granted")
    role = value.get("role", HabilitationRole.DECLARANT.value)
    if role not in HabilitationRole.__members__:
        raise problems.bad("« role » invalide (DECLARANT ou CONSULTATION)")
    if not isinstance(value.get("granted"), bool):
        raise problems.bad("« granted » invalide : true ou false")
    return Change(
        problems.siret(value.get("siret")),
        problems.service_code(value.get("service")),
        role,
        value["granted"],
    )


@bp.post("/<company_id>/declarants/<declarant_id>/habilitations")
def habilitations(company_id: str, declarant_id: str) -> Response:
    """Grant or revoke the declarant's habilitations (all or nothing)."""
    actor, checked, person = _target(company_id, declarant_id)
    body = problems.json_body(frozenset({"changes"}))
    raw = body.get("changes")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_CHANGES:
        raise problems.bad(f"« changes » invalide : de 1 à {MAX_CHANGES} changements")
    changes = [_change(item, "changes") for item in raw]
    changed = set_habilitations(
        db.session(),
        company_id=checked,
        actor=actor,
        declarant_id=person,
        changes=changes,
        address=client_address(),
    )
    return _done({"declarant_id": person, "changed": changed})
