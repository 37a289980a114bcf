"""The declarant's dashboard: their services, grouped by establishment.

An accounting firm's declarant also sees the services of client companies they
are habilitated on through a mandate, marked as such. Each service links to the
partners that receive it (portal navigation, :mod:`idp.portal.navigation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, make_response, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.login import authenticated_declarant, login_required
from idp.console.operators import is_operator
from idp.portal.navigation import navigable_partners
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.administration.access import admin_company_ids
from rcd_store.models import Declarant, Role
from rcd_store.services import active_habilitations

bp = Blueprint("dashboard", __name__)


@dataclass
class ServiceTile:
    code: str
    name: str
    roles: list[str]
    partners: list[str]


@dataclass
class EstablishmentGroup:
    siret: str
    company: str
    head_office: bool
    via_mandate: bool
    services: list[ServiceTile] = field(default_factory=list)


def groups_for(session: Session, declarant: Declarant) -> list[EstablishmentGroup]:
    """The declarant's active habilitations, one group per establishment (own companies
    first, then clients through a mandate), each service with its reachable partners."""
    habilitations = active_habilitations(session, declarant.id)
    own = set(session.scalars(select(Role.company_id).where(Role.declarant_id == declarant.id)))
    reachable = navigable_partners(session, sorted({h.service_id for h in habilitations}))
    groups: dict[str, EstablishmentGroup] = {}
    for h in habilitations:
        place = h.establishment
        group = groups.setdefault(
            place.siret,
            EstablishmentGroup(
                place.siret, place.company.name, place.head_office, place.company_id not in own
            ),
        )
        tile = next((t for t in group.services if t.code == h.service.code), None)
        if tile is None:
            tile = ServiceTile(
                h.service.code,
                h.service.name,
                [],
                [p.name for p in reachable.get(h.service_id, [])],
            )
            group.services.append(tile)
        if h.role not in tile.roles:
            tile.roles.append(h.role)
    for group in groups.values():
        group.services.sort(key=lambda t: t.name.lower())
    return sorted(groups.values(), key=lambda g: (g.via_mandate, g.company.lower(), g.siret))


@bp.get("/tableau-de-bord")
def index() -> ResponseReturnValue:
    """The dashboard; without a live session, the login page (coming back here)."""
    session = db.session()
    who = authenticated_declarant()
    if who is None:
        return login_required("/tableau-de-bord")
    row, declarant = who
    page = render_template(
        "dashboard.html",
        declarant=declarant,
        groups=groups_for(session, declarant),
        origin=row.origin,
        administers=bool(admin_company_ids(session, declarant.id)),
        operator=is_operator(session, declarant.id),
    )
    return no_store(make_response(page))
