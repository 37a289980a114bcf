"""Portal navigation (IdP-initiated): one click on the dashboard, one token for one service.

``POST /navigation/<service code>`` (CSRF-protected) signs a jeton (or an
Interops-R JWT, per the partner's setting) carrying only that service's PAGM
and habilitations, audits it, records the partner as a participant of the SSO
session (for Single Logout), and answers a page that posts the token to the
partner's landing URL: by itself with JavaScript, with a visible button without.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    make_response,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.login import authenticated_declarant, login_required
from idp.i18n import _
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.tokens import issuing as tokens
from idp.web.answers import no_store
from partners.models import Partner, PartnerService
from partners.services import default_acs
from rcd_store import audit
from rcd_store.models import Declarant, Service, partner_key
from rcd_store.services import active_habilitations

bp = Blueprint("navigation", __name__)


def acs_url(partner: Partner) -> str | None:
    """The partner's default HTTP-POST assertion consumer URL, if it is a SAML SP."""
    return default_acs(partner.saml)


def landing_url(partner: Partner) -> str | None:
    """Where navigation posts the token: the landing URL, else (SAML) the ACS."""
    if partner.landing_url:
        return partner.landing_url
    return acs_url(partner) if partner.token_format == "saml" else None


def navigable_partners(session: Session, service_ids: list[int]) -> dict[int, list[Partner]]:
    """For each service id, the registered partners receiving it that have a landing URL."""
    rows = session.execute(
        select(PartnerService.service_id, Partner)
        .join(Partner, Partner.id == PartnerService.partner_id)
        .where(PartnerService.service_id.in_(service_ids))
        .order_by(Partner.name)
    ).all()
    found: dict[int, list[Partner]] = {}
    for service_id, partner in rows:
        if landing_url(partner):
            found.setdefault(service_id, []).append(partner)
    return found


@dataclass(frozen=True)
class Destination:
    partner: Partner
    service: Service
    url: str


def _destination(session: Session, code: str, partner_name: str | None) -> Destination:
    service = session.scalars(select(Service).where(Service.code == code.strip().upper())).first()
    if service is None:
        abort(404)
    candidates = navigable_partners(session, [service.id]).get(service.id, [])
    if partner_name:
        candidates = [p for p in candidates if partner_key(p.name) == partner_key(partner_name)]
    if len(candidates) != 1:
        abort(
            404 if not candidates else 400,
            description=_("Choisissez le partenaire depuis le tableau de bord."),
        )
    partner = candidates[0]
    return Destination(partner, service, str(landing_url(partner)))


def _participant(destination: Destination, row: SsoRecord) -> dict[str, Any]:
    partner = destination.partner
    if partner.token_format == "saml" and partner.saml is not None:
        # the same shape as idp.sso_saml's, so one partner is told once at Single Logout
        return {
            "protocol": "saml",
            "partner": partner.name,
            "name_id": row.declarant_id,
            "session_index": row.sid,
        }
    return {"protocol": "navigation", "partner": partner.name}


def _form_fields(issued: tokens.IssuedToken) -> dict[str, str]:
    if issued.format == "saml":
        return {"SAMLResponse": base64.b64encode(issued.token.encode("utf-8")).decode("ascii")}
    return {"jeton": issued.token}


def _issue(
    session: Session, row: SsoRecord, declarant: Declarant, destination: Destination
) -> tokens.IssuedToken:
    """Sign the minimised token: only ``destination.service``'s PAGM and habilitations."""
    partner = destination.partner
    vector = tokens.vector_for(
        session,
        declarant,
        [destination.service],
        acr=row.acr,
        auth_time=row.auth_time,
        session_index=row.sid,
        include_email="email" in (partner.claims or []),
    )
    recipient = acs_url(partner) or destination.url
    return tokens.token_service().issue(
        session,
        vector,
        fmt=partner.token_format,
        audience=partner.identifier,
        recipient=recipient,
        lifetime=timedelta(seconds=partner.token_lifetime_seconds),
    )


@bp.post("/navigation/<code>")
def navigate(code: str) -> ResponseReturnValue:
    """Issue a token for one service and post it to its partner (IdP-initiated SSO)."""
    session = db.session()
    who = authenticated_declarant()
    if who is None:
        return login_required("/tableau-de-bord")
    row, declarant = who
    destination = _destination(session, code, request.form.get("partner"))
    habilitated = any(
        h.service_id == destination.service.id for h in active_habilitations(session, declarant.id)
    )
    if not habilitated and not destination.service.identity_only:
        abort(403, description=_("Vous n'êtes pas habilité à ce service."))
    issued = _issue(session, row, declarant, destination)
    audit.record(
        session,
        "portal.navigation",
        actor=declarant.id,
        target=destination.partner.name,
        data={
            "service": destination.service.code,
            "token": issued.token_id,
            "format": issued.format,
        },
    )
    sessions.add_participant(session, row, _participant(destination, row))
    session.commit()
    page = render_template(
        "navigate.html",
        action=destination.url,
        fields=_form_fields(issued),
        partner=destination.partner.name,
        service=destination.service,
    )
    response = no_store(make_response(page))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
