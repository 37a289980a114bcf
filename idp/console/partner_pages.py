"""The console's partner pages: the list, adding a partner, one partner's page (its
settings form, its clients, its SAML settings) and its edit."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from idp.console.common import address, back, bp, done_message, operator
from idp.console.forms import (
    PARTNER_FIELDS,
    Filled,
    applied,
    edited,
    partner_form,
    partner_values,
)
from idp.stores import db
from partners import services as registry
from partners.models import Partner
from rcd_store.models import Service


def partner_or_404(partner_id: int) -> Partner:
    found = db.session().get(Partner, partner_id)
    if found is None:
        abort(404)
    return found


def _services() -> list[Service]:
    return list(db.session().scalars(select(Service).order_by(Service.code)))


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template(
        "console/home.html", partners=registry.list_partners(db.session()), done=done_message()
    )


@bp.get("/partenaires/nouveau")
def add() -> ResponseReturnValue:
    return render_template(
        "console/partner_add.html",
        form={"format": "saml", "duree": "300", "services": []},
        services=_services(),
        errors=Filled().errors,
    )


@bp.post("/partenaires/nouveau")
def add_post() -> ResponseReturnValue:
    settings, filled = partner_form(adding=True)
    session = db.session()
    result = None
    if settings is not None:
        result = applied(
            session,
            lambda: registry.add_partner(session, settings, actor=operator().id, address=address()),
            filled,
            PARTNER_FIELDS,
        )
    if result is None:
        return _again("console/partner_add.html", filled)
    session.commit()
    return back("console.partner", "ajout", partner_id=result.partner.id)


def _again(template: str, filled: Filled, **context: Any) -> ResponseReturnValue:
    """The form again, with what was typed and the refusals beside their fields."""
    status = int(filled.values.pop("status", 400))
    return render_template(
        template, form=filled.values, errors=filled.errors, services=_services(), **context
    ), status


@bp.get("/partenaires/<int:partner_id>")
def partner(partner_id: int) -> ResponseReturnValue:
    found = partner_or_404(partner_id)
    return render_template(
        "console/partner.html",
        partner=found,
        form=partner_values(found),
        errors=Filled().errors,
        services=_services(),
        done=done_message(),
    )


@bp.post("/partenaires/<int:partner_id>")
def partner_post(partner_id: int) -> ResponseReturnValue:
    found = partner_or_404(partner_id)
    name = found.name
    settings, filled = partner_form(adding=False)
    filled.values["nom"] = name
    if settings is not None and not settings.services:
        found.services = []  # every box unticked: it shares none any more
    if settings is None or edited(name, settings, filled, PARTNER_FIELDS) is None:
        return _again("console/partner.html", filled, partner=partner_or_404(partner_id))
    db.session().commit()
    return back("console.partner", "modification", partner_id=partner_id)
