"""Portal navigation (IdP-initiated): one click on the dashboard, one token for one service.

``POST /navigation/<service code>`` (CSRF-protected) signs a jeton (or an
Interops-R JWT, per the partner's setting) carrying only that service's PAGM
and habilitations, audits it, records the partner as a participant of the SSO
session (for Single Logout), and answers a page that posts the token to the
partner's landing URL: by itself with JavaScript, with a visible button without.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from flask import (
    Blueprint,
    abort,
    make_response,
    render_template,
    request,
)
from flask.typing import ResponseReturnValue
from markupsafe import escape
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp.auth.login import login_required
from idp.i18n import _, current_locale
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.stores.generations import generations
from idp.tokens import issuing as tokens
from idp.tokens.holder import Held, Holder, read_rule, vector_of
from idp.web.answers import no_store
from partners.models import Partner, PartnerService
from partners.services import default_acs
from rcd_store.models import Service, partner_key

bp = Blueprint("navigation", __name__)
R = TypeVar("R", bound=Response)


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
    """Where a navigation goes: the partner and the service (detached rows, read-only, with
    the partner's SAML settings loaded), the landing URL, and the service's PAGM."""

    partner: Partner
    service: Service
    url: str
    pagm: dict[tuple[int, str], str]
    #: the auto-post page by (language, field), around the token's slot (:func:`_page`)
    pages: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict, compare=False)


def _load_destination(code: str, partner_name: str | None) -> Callable[[Session], Any]:
    """What ``destination_of`` caches: a :class:`Destination`, or the refusal's status (0:
    no such service)."""

    def load(session: Session) -> Destination | int:
        service = session.scalars(select(Service).where(Service.code == code)).first()
        if service is None:
            return 0
        candidates = navigable_partners(session, [service.id]).get(service.id, [])
        if partner_name:
            wanted = partner_key(partner_name)
            candidates = [p for p in candidates if partner_key(p.name) == wanted]
        if len(candidates) != 1:
            return 400 if candidates else 404
        partner = candidates[0]
        partner.saml  # noqa: B018 (loaded now: the row is used detached, see Destination)
        url = str(landing_url(partner))
        return Destination(partner, service, url, tokens.service_pagm(session, [service.id]))

    return load


def destination_of(code: str, partner_name: str | None) -> Destination | int:
    """The service ``code``'s one navigable partner (or the one named), from the process's
    cache of partners and services (:mod:`idp.stores.generations`: a change anywhere is
    seen within a second); else the refusal's status (0: no such service, see
    :func:`_refuse`)."""
    code, name = code.strip().upper()[:64], (partner_name or "")[:200] or None
    registry = generations()
    key = ("navigation", code, name, registry.current("services"))
    found: Destination | int = registry.cached("partners", key, _load_destination(code, name))
    return found


def _refuse(status: int) -> NoReturn:
    if not status:
        abort(404)  # no such service
    abort(status, description=_("Choisissez le partenaire depuis le tableau de bord."))


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


def _form_field(issued: tokens.IssuedToken) -> tuple[str, str]:
    if issued.format == "saml":
        return "SAMLResponse", base64.b64encode(issued.token.encode("utf-8")).decode("ascii")
    return "jeton", issued.token


#: where the token goes in a page rendered ahead (random: no name or URL can hold it)
_SLOT = secrets.token_hex(16)


def _page(destination: Destination, name: str, value: str) -> str:
    """The page that posts ``value`` as the field ``name`` to the destination: rendered
    once per destination (the process's cache drops it with the destination when a
    partner or service changes), language and field, with a slot the token fills,
    escaped, at each navigation."""
    key = (current_locale(), name)
    parts = destination.pages.get(key)
    if parts is None:
        page = render_template(
            "navigate.html",
            action=destination.url,
            fields={name: _SLOT},
            partner=destination.partner.name,
            service=destination.service,
        )
        if page.count(_SLOT) != 1:
            raise RuntimeError("navigate.html: the token's field must appear once")
        head, _slot, tail = page.partition(_SLOT)
        parts = destination.pages[key] = (head, tail)
    return fill(parts, value)


def fill(parts: tuple[str, str], value: str) -> str:
    """A page rendered ahead (:func:`_page`) with ``value``, escaped, in its slot."""
    return f"{parts[0]}{escape(value)}{parts[1]}"


def _field_name(token_format: str) -> str:
    return "SAMLResponse" if token_format == "saml" else "jeton"


def form_field(issued: tokens.IssuedToken) -> tuple[str, str]:
    """The field of the auto-post form carrying ``issued``, and its value."""
    if issued.format == "saml":
        value = base64.b64encode(issued.token.encode("utf-8")).decode("ascii")
        return _field_name(issued.format), value
    return _field_name(issued.format), issued.token


def rendered(destination: Destination, locale: str) -> tuple[str, str] | None:
    """The page of ``destination`` in ``locale`` for its token's field, if :func:`_page`
    has rendered it ahead."""
    return destination.pages.get((locale, _field_name(destination.partner.token_format)))


#: a navigation refused: back to the login page (no declarant, or not active)
LOGIN = -1


@dataclass(frozen=True)
class Granted:
    """A navigation the rule lets through: who, to where, with which rights in force,
    and whether the session must first record the partner as a participant."""

    row: SsoRecord
    who: Holder
    destination: Destination
    held: list[Held]
    participant: dict[str, Any]

    @property
    def new_participant(self) -> bool:
        return self.participant not in self.row.participants


def judge(
    session: Session | Connection, row: SsoRecord, code: str, partner_name: str | None
) -> Granted | int:
    """The navigation rule, for the live session ``row``: the service ``code``'s partner
    from the process's cache, then the declarant and their rights in force read fresh
    (:mod:`idp.tokens.holder`: in one statement, never cached), then :func:`verdict`."""
    destination = destination_of(code, partner_name)
    wanted = [destination.service.id] if isinstance(destination, Destination) else []
    who, held = read_rule(session, row.declarant_id, wanted)
    return verdict(row, destination, who, held)


def verdict(
    row: SsoRecord, destination: Destination | int, who: Holder | None, held: list[Held]
) -> Granted | int:
    """The rule, once ``destination`` (:func:`destination_of`) and the declarant ``who``
    with their rights in force ``held`` on its service are known (read fresh). Refused:
    :data:`LOGIN` (no such declarant or not active, whatever the service), else
    :func:`destination_of`'s refusal, else 403 (no right on a service that needs one)."""
    if who is None or not who.active:
        return LOGIN
    if not isinstance(destination, Destination):
        return destination
    if not held and not destination.service.identity_only:
        return 403
    return Granted(row, who, destination, held, _participant(destination, row))


def issue(granted: Granted) -> tokens.IssuedToken:
    """Sign the minimised token: only the destination service's PAGM and habilitations;
    the token's audit event and the navigation's go in one INSERT, committed by the
    process's group commit before this returns (no jeton leaves untraced; the caller
    holds no write)."""
    row, who, destination = granted.row, granted.who, granted.destination
    partner, service = destination.partner, destination.service
    vector = vector_of(
        who,
        {service.id: service.code},
        granted.held,
        destination.pagm,
        acr=row.acr,
        auth_time=row.auth_time,
        session_index=row.sid,
        include_email="email" in (partner.claims or []),
    )
    navigation = {"service": service.code, "token": tokens.TOKEN_ID, "format": partner.token_format}
    return tokens.token_service().issue(
        None,
        vector,
        fmt=partner.token_format,
        audience=partner.identifier,
        recipient=acs_url(partner) or destination.url,
        lifetime=timedelta(seconds=partner.token_lifetime_seconds),
        events=[("portal.navigation", who.id, partner.name, navigation)],
        grouped=True,
    )


def finish(response: R) -> R:
    """The headers of the auto-post page beside the app's own: never stored, no referrer."""
    no_store(response)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/navigation/<code>")
def navigate(code: str) -> ResponseReturnValue:
    """Issue a token for one service and post it to its partner (IdP-initiated SSO).

    Reads the session, then the rule fresh (:func:`judge`), and writes the token's and
    the navigation's audit events in one INSERT (and the partner among the session's
    participants, the first time): partners, services and PAGM come from the process's
    cache. :mod:`idp.portal.lean_navigation` answers the ordinary success of this route
    in front of Flask, with the same functions."""
    session = db.session()
    row = sessions.current_session()
    if row is None:
        return login_required("/tableau-de-bord")
    granted = judge(session, row, code, request.form.get("partner"))
    if granted == LOGIN:
        return login_required("/tableau-de-bord")
    if granted == 403:
        abort(403, description=_("Vous n'êtes pas habilité à ce service."))
    if not isinstance(granted, Granted):
        _refuse(granted)
    if granted.new_participant:
        sessions.add_participant(session, row, granted.participant)
    session.commit()  # the reads' transaction ends (and a new participant is written)
    issued = issue(granted)
    return finish(make_response(_page(granted.destination, *form_field(issued))))
