"""Granting, ending and sweeping mandates (no permission check here: :mod:`.delegation`
checks who acts; the operator's CLI calls these directly).

Ending a mandate revokes every habilitation granted under it in the caller's
transaction, each revocation audited. An end date that passes needs no action to take
effect (:mod:`.rules` refuses the rights from that instant); :func:`sweep` then revokes
the rows, so that lists of rights stay true.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.identifiers import InvalidIdentifier, validate_siren, validate_siret
from rcd_store.mandates.rules import moment
from rcd_store.models import (
    Company,
    Establishment,
    Habilitation,
    Mandate,
    MandateKind,
    MandateStatus,
    Service,
    ServiceState,
)
from rcd_store.services.habilitations import revoke_rights

KINDS = tuple(kind.value for kind in MandateKind)
#: bounds on what one mandate names (a form or an API body cannot grow it without end)
MAX_SERVICES = 50
MAX_ESTABLISHMENTS = 200


@dataclass(frozen=True)
class Terms:
    """What a mandate lets the mandataire do: services, optionally some of the client's
    establishments (SIRETs; none: all), between two dates (no end: until ended)."""

    services: Sequence[str]
    kind: str = MandateKind.CABINET.value
    establishments: Sequence[str] = field(default_factory=tuple)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def _siren(value: str, label: str) -> str:
    try:
        return validate_siren(value.strip())
    except InvalidIdentifier as exc:
        raise DirectoryError(f"{label} : {exc}") from None


def company_by_siren(session: Session, siren: str, label: str = "SIREN") -> Company:
    """The company of a SIREN (checked), or :class:`NotFound`."""
    siren = _siren(siren, label)
    found = session.scalars(select(Company).where(Company.siren == siren)).first()
    if found is None:
        raise NotFound(f"entreprise inconnue : SIREN {siren}")
    return found


def _services(session: Session, codes: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(code.strip().upper() for code in codes if code.strip()))
    if not wanted:
        raise DirectoryError("un mandat porte sur au moins un service")
    if len(wanted) > MAX_SERVICES:
        raise DirectoryError(f"trop de services ({MAX_SERVICES} au plus)")
    found = set(
        session.scalars(
            select(Service.code).where(
                Service.code.in_(wanted), Service.state != ServiceState.CLOSED.value
            )
        )
    )
    for code in wanted:
        if code not in found:
            raise NotFound(f"service inconnu ou fermé : {code[:40]!r}")
    return wanted


def _establishments(session: Session, client: Company, sirets: Sequence[str]) -> list[str]:
    if len(sirets) > MAX_ESTABLISHMENTS:
        raise DirectoryError(f"trop d'établissements ({MAX_ESTABLISHMENTS} au plus)")
    try:
        wanted = list(dict.fromkeys(validate_siret(s.strip()) for s in sirets if s.strip()))
    except InvalidIdentifier as exc:
        raise DirectoryError(str(exc)) from None
    found = set(
        session.scalars(
            select(Establishment.siret).where(
                Establishment.siret.in_(wanted), Establishment.company_id == client.id
            )
        )
    )
    for siret in wanted:
        if siret not in found:
            raise NotFound(f"établissement inconnu dans l'entreprise cliente : SIRET {siret}")
    return wanted


def _dates(terms: Terms, now: datetime) -> tuple[datetime, datetime | None]:
    starts = terms.starts_at or now
    for value in (starts, terms.ends_at):
        if value is not None and value.tzinfo is None:
            raise DirectoryError("date sans fuseau horaire")
    if terms.ends_at is not None and terms.ends_at <= max(starts, now):
        raise DirectoryError("la date de fin doit suivre la date de début et aujourd'hui")
    return starts, terms.ends_at


def _no_live_twin(session: Session, client: Company, firm: Company, now: datetime) -> None:
    twin = session.scalars(
        select(Mandate.id).where(
            Mandate.client_company_id == client.id,
            Mandate.firm_company_id == firm.id,
            Mandate.ended_at.is_(None),
            or_(Mandate.ends_at.is_(None), Mandate.ends_at > now),
        )
    ).first()
    if twin is not None:
        raise Duplicate(
            f"un mandat en cours lie déjà ces deux entreprises (mandat n° {twin}) : "
            "mettez-y fin avant d'en accorder un autre"
        )


def grant_mandate(
    session: Session,
    *,
    client: Company,
    firm_siren: str,
    terms: Terms,
    actor: str | None,
    now: datetime | None = None,
) -> Mandate:
    """A mandate of ``client`` to the company ``firm_siren``, validated whole before
    anything is written (kind, services open, establishments of the client, dates, no
    other mandate in course between the two), audited."""
    now = moment(now)
    if terms.kind not in KINDS:
        raise DirectoryError(
            f"nature de mandat inconnue : {terms.kind[:20]!r} ({', '.join(KINDS)})"
        )
    firm = company_by_siren(session, firm_siren, "SIREN du mandataire")
    if firm.id == client.id:
        raise DirectoryError("une entreprise ne peut pas se mandater elle-même")
    codes = _services(session, terms.services)
    sirets = _establishments(session, client, terms.establishments)
    starts, ends = _dates(terms, now)
    _no_live_twin(session, client, firm, now)
    mandate = Mandate(
        client_company_id=client.id,
        firm_company_id=firm.id,
        kind=terms.kind,
        services=codes,
        establishments=sirets,
        status=MandateStatus.ACCEPTED.value,
        starts_at=starts,
        ends_at=ends,
    )
    session.add(mandate)
    session.flush()
    audit.record(
        session,
        "mandate.accepted",
        actor=actor,
        target=client.siren,
        data={
            "mandate": mandate.id,
            "firm": firm.siren,
            "kind": terms.kind,
            "services": codes,
            "establishments": sirets,
            "starts_at": starts.isoformat(),
            "ends_at": ends.isoformat() if ends else None,
        },
    )
    return mandate


def add_mandate(
    session: Session,
    *,
    client_siren: str,
    firm_siren: str,
    services: Sequence[str],
    actor: str | None = None,
    kind: str = MandateKind.CABINET.value,
    establishments: Sequence[str] = (),
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    now: datetime | None = None,
) -> Mandate:
    """:func:`grant_mandate` named by the two SIRENs (the operator's CLI and the demo)."""
    client = company_by_siren(session, client_siren, "SIREN du client")
    terms = Terms(services, kind, establishments, starts_at, ends_at)
    return grant_mandate(
        session, client=client, firm_siren=firm_siren, terms=terms, actor=actor, now=now
    )


def _revoke_rights(session: Session, mandate: Mandate, *, actor: str, now: datetime) -> int:
    data: dict[str, object] = {"mandate": mandate.id, "reason": "mandate_ended"}
    where = Habilitation.mandate_id == mandate.id
    return revoke_rights(session, where=where, actor=actor, now=now, data=data)


def end_mandate(
    session: Session, *, mandate: Mandate, actor: str, now: datetime | None = None
) -> int:
    """End ``mandate`` now and revoke, in the same transaction, every habilitation
    granted under it (each audited); returns how many. Ending it twice is an error."""
    now = moment(now)
    if mandate.ended_at is not None:
        raise DirectoryError("ce mandat a déjà pris fin")
    claimed = session.execute(
        update(Mandate)
        .where(Mandate.id == mandate.id, Mandate.ended_at.is_(None))
        .values(ended_at=now, ended_by=actor, status=MandateStatus.REVOKED.value)
        .execution_options(synchronize_session=False)
    )
    if rows_affected(claimed) != 1:
        raise DirectoryError("ce mandat a déjà pris fin")
    session.refresh(mandate)
    revoked = _revoke_rights(session, mandate, actor=actor, now=now)
    audit.record(
        session,
        "mandate.ended",
        actor=actor,
        target=mandate.client.siren,
        data={"mandate": mandate.id, "firm": mandate.firm.siren, "revoked": revoked},
    )
    return revoked


def sweep(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Close the mandates whose end date has passed (at most ``limit`` per call) and
    revoke their habilitations; returns how many habilitations were revoked. The rights
    were already refused from the end instant (:mod:`.rules`): this keeps rows true."""
    now = moment(now)
    expired = session.scalars(
        select(Mandate)
        .where(Mandate.ended_at.is_(None), Mandate.ends_at.is_not(None), Mandate.ends_at <= now)
        .order_by(Mandate.id)
        .limit(limit)
    ).all()
    revoked = 0
    for mandate in expired:
        assert mandate.ends_at is not None
        mandate.ended_at, mandate.ended_by = mandate.ends_at, "system"
        mandate.status = MandateStatus.REVOKED.value
        session.flush()
        count = _revoke_rights(session, mandate, actor="system", now=now)
        audit.record(
            session,
            "mandate.expired",
            target=mandate.client.siren,
            data={"mandate": mandate.id, "firm": mandate.firm.siren, "revoked": count},
        )
        revoked += count
    return revoked
