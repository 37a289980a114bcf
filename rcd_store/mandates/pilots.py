"""Pilot services: a service in state ``pilot`` is open only to the companies listed
for it (:class:`rcd_store.models.PilotCompany`). The rule is applied where rights are
read (:func:`rcd_store.mandates.rules.rights_in_force`), so a company outside the list
neither sees the service nor gets a token for it on any path."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.mandates.lifecycle import company_by_siren
from rcd_store.models import Company, PilotCompany, Service, ServiceState


def _service(session: Session, code: str) -> Service:
    found = session.scalars(select(Service).where(Service.code == code.strip().upper())).first()
    if found is None:
        raise NotFound(f"service inconnu : {code[:40]!r}")
    return found


def open_to(session: Session, *, code: str, siren: str, actor: str | None) -> Service:
    """Open the service to the company as a pilot: the service goes to state ``pilot``
    (from ``open``; a closed service is refused) and the company joins its list."""
    service = _service(session, code)
    company = company_by_siren(session, siren)
    if service.state == ServiceState.CLOSED.value:
        raise DirectoryError(f"le service {service.code} est fermé")
    listed = session.scalars(
        select(PilotCompany.id).where(
            PilotCompany.service_id == service.id, PilotCompany.company_id == company.id
        )
    ).first()
    if listed is not None:
        raise DirectoryError(f"le pilote {service.code} est déjà ouvert à {company.siren}")
    service.state = ServiceState.PILOT.value
    session.add(PilotCompany(service_id=service.id, company_id=company.id))
    session.flush()
    audit.record(
        session, "service.pilot_opened", actor=actor, target=service.code, data={"siren": siren}
    )
    return service


def close_to(session: Session, *, code: str, siren: str, actor: str | None) -> Service:
    """Take the company off the pilot's list (the service stays a pilot)."""
    service = _service(session, code)
    company = company_by_siren(session, siren)
    result = session.execute(
        delete(PilotCompany).where(
            PilotCompany.service_id == service.id, PilotCompany.company_id == company.id
        )
    )
    if rows_affected(result) != 1:
        raise DirectoryError(f"le pilote {service.code} n'est pas ouvert à {company.siren}")
    audit.record(
        session, "service.pilot_closed", actor=actor, target=service.code, data={"siren": siren}
    )
    return service


def companies(session: Session, code: str, *, limit: int = 1000) -> list[str]:
    """The SIRENs a pilot service is open to (at most ``limit``)."""
    service = _service(session, code)
    return list(
        session.scalars(
            select(Company.siren)
            .join(PilotCompany, PilotCompany.company_id == Company.id)
            .where(PilotCompany.service_id == service.id)
            .order_by(Company.siren)
            .limit(limit)
        )
    )
