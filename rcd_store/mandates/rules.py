"""The rule that says whether a right counts now, in one place.

A habilitation granted under a mandate counts only while that mandate lives: accepted,
started, not ended, not past its end date (:func:`live`). From the end instant the
right is refused on every read, before any sweep revokes its row. A habilitation on a
pilot service counts only for an establishment of a company the pilot is open to.
:func:`rights_in_force` is the SQL condition :func:`rcd_store.services.active_habilitations`
adds to its query (stops a mandataire acting after its mandate, and a company outside a
pilot getting a token for it on any path).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import Session

from rcd_store.db import utcnow
from rcd_store.models import (
    Establishment,
    Habilitation,
    Mandate,
    MandateStatus,
    PilotCompany,
    Service,
    ServiceState,
)

#: the clock of the rules (tests replace it to move time)
clock = utcnow


def moment(now: datetime | None) -> datetime:
    """``now``, or the rules' clock."""
    return now if now is not None else clock()


def live(now: datetime) -> ColumnElement[bool]:
    """SQL: the mandate is accepted, has started, was not ended and its end is ahead."""
    return and_(
        Mandate.status == MandateStatus.ACCEPTED.value,
        Mandate.ended_at.is_(None),
        Mandate.starts_at <= now,
        or_(Mandate.ends_at.is_(None), Mandate.ends_at > now),
    )


def is_live(mandate: Mandate, now: datetime) -> bool:
    """:func:`live` for a loaded mandate."""
    return (
        mandate.status == MandateStatus.ACCEPTED.value
        and mandate.ended_at is None
        and mandate.starts_at <= now
        and (mandate.ends_at is None or mandate.ends_at > now)
    )


def pilot_open_to_establishment() -> ColumnElement[bool]:
    """SQL on a query of :class:`Habilitation`: its service's pilot list holds the
    company of its establishment (correlated to the enclosing query's habilitation)."""
    return exists(
        select(PilotCompany.id)
        .join(Establishment, Establishment.company_id == PilotCompany.company_id)
        .where(
            PilotCompany.service_id == Habilitation.service_id,
            Establishment.id == Habilitation.establishment_id,
        )
        .correlate(Habilitation)
    )


def rights_in_force(now: datetime) -> ColumnElement[bool]:
    """SQL on a query of :class:`Habilitation` joined to its :class:`Service`: its mandate,
    if any, lives at ``now``; its service, if a pilot, is open to the establishment's
    company."""
    mandate_lives = exists(
        select(Mandate.id).where(Mandate.id == Habilitation.mandate_id, live(now))
    ).correlate(Habilitation)
    return and_(
        or_(Habilitation.mandate_id.is_(None), mandate_lives),
        or_(Service.state != ServiceState.PILOT.value, pilot_open_to_establishment()),
    )


def rights_select(*extra: Any) -> Select[Any]:
    """SQL: each habilitation as (id, declarant id, SIRET, service code, role, *extra),
    joined to its establishment and service (callers add their conditions)."""
    return (
        select(
            Habilitation.id,
            Habilitation.declarant_id,
            Establishment.siret,
            Service.code,
            Habilitation.role,
            *extra,
        )
        .join(Establishment, Establishment.id == Habilitation.establishment_id)
        .join(Service, Service.id == Habilitation.service_id)
    )


def covers(mandate: Mandate, establishment: Establishment, service_code: str) -> bool:
    """The mandate names the service and, when it lists establishments, this one."""
    return service_code in mandate.services and (
        not mandate.establishments or establishment.siret in mandate.establishments
    )


def covering_mandate(
    session: Session,
    firm_ids: Iterable[int],
    establishment: Establishment,
    service: Service,
    *,
    now: datetime | None = None,
) -> Mandate | None:
    """A mandate, live at ``now``, by which one of ``firm_ids`` may act for the
    establishment on the service (its services, establishments and dates), or ``None``."""
    firms = list(firm_ids)
    if not firms:
        return None
    stmt = (
        select(Mandate)
        .where(
            Mandate.client_company_id == establishment.company_id,
            Mandate.firm_company_id.in_(firms),
            live(moment(now)),
        )
        .order_by(Mandate.id)
    )
    return next((m for m in session.scalars(stmt) if covers(m, establishment, service.code)), None)
