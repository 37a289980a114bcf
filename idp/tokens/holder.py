"""What a jeton says of its declarant, read fresh on every issuance in one prepared
statement (issue 18: SSO navigation on a diet).

The rule is read at each navigation, never cached: the declarant (active or not, names,
e-mail, home establishment's SIRET) and their rights in force on the audience's services
only (:func:`rcd_store.services.rights_counting`, the one definition of a right in
force, with the establishment's SIRET), joined in one statement. It is built once per
process with bound parameters (the moment of the rule included), and runs as SQLAlchemy
Core on the request's connection: no ORM object is loaded, no statement is rebuilt, and
SQLAlchemy's compiled cache serves it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, join, select
from sqlalchemy.orm import Session, aliased

from rcd_store.db import UTCDateTime
from rcd_store.mandates.rules import moment
from rcd_store.models import Declarant, DeclarantStatus, Establishment, Habilitation, Service
from rcd_store.services import rights_counting
from token_suite.vector import ACR_PASSWORD, IdentityVector
from token_suite.vector import Habilitation as Right


@dataclass(frozen=True)
class Holder:
    """The declarant a jeton names, as the directory says now."""

    id: str
    active: bool
    last_name: str
    first_name: str
    email: str | None
    home_siret: str | None


#: a right in force as a token carries it: (service id, SIRET, role)
Held = tuple[int, str, str]

_HOME = aliased(Establishment)
_RIGHTS = join(Habilitation, Service, Service.id == Habilitation.service_id).join(
    Establishment, Establishment.id == Habilitation.establishment_id
)
#: what the rule reads: the declarant, then each right in force (NULLs when none)
_COLUMNS = (
    Declarant.id,
    Declarant.status,
    Declarant.last_name,
    Declarant.first_name,
    Declarant.email,
    _HOME.siret,
    Habilitation.service_id,
    Establishment.siret,
    Habilitation.role,
)
#: the rights of an expanding list of services ``services``, or of the one ``service``
MANY: ColumnElement[bool] = Habilitation.service_id.in_(bindparam("services", expanding=True))
ONE: ColumnElement[bool] = Habilitation.service_id == bindparam("service")


def rule_statement(
    services: ColumnElement[bool],
    *leading: ColumnElement[Any],
    start: Any = None,
    on: ColumnElement[bool] | None = None,
    where: ColumnElement[bool] | None = None,
) -> Select[Any]:
    """The rule as one statement: the declarant and each of their rights in force
    (:func:`rcd_store.services.rights_counting` at the bound ``now``) on the services
    ``services`` selects (:data:`MANY` or :data:`ONE`), in order; the declarant is
    ``bindparam("declarant")``. With ``start``, a table whose row ``where`` selects and
    names the declarant (``on``), that row's ``leading`` columns come first: one
    statement reads that row and the rule together (the navigation's session, issue
    18), with NULLs for a declarant that is not there."""
    found = select(*leading, *_COLUMNS)
    if start is None:
        found = found.select_from(Declarant).where(Declarant.id == bindparam("declarant"))
    elif on is None or where is None:
        raise TypeError("a rule joined to a table needs on and where")
    else:
        found = found.select_from(start).outerjoin(Declarant, on).where(where)
    return (
        found.outerjoin(_HOME, _HOME.id == Declarant.home_establishment_id)
        .outerjoin(
            _RIGHTS,
            and_(
                Habilitation.declarant_id == Declarant.id,
                services,
                # the rule's moment bound at each run (the rule only compares it in SQL)
                rights_counting(cast(datetime, bindparam("now", type_=UTCDateTime()))),
            ),
        )
        .order_by(Habilitation.id)
    )


#: the rule for a list of services, built once (SQLAlchemy's compiled cache serves it)
_RULE = rule_statement(MANY)


def rule_params(now: datetime | None = None, **values: Any) -> dict[str, Any]:
    """The parameters of a :func:`rule_statement`: ``values`` and the rule's moment
    (``now``, the rules' clock by default)."""
    return {**values, "now": moment(now)}


def rule_of(rows: Sequence[Sequence[Any]], skip: int = 0) -> tuple[Holder | None, list[Held]]:
    """The declarant (None when unknown) and their rights in force, from the rows of a
    :func:`rule_statement` (its ``leading`` columns, ``skip`` of them, left aside)."""
    if not rows or rows[0][skip] is None:
        return None, []
    ident, status, last_name, first_name, email, home_siret = rows[0][skip : skip + 6]
    active = status == DeclarantStatus.ACTIVE.value
    who = Holder(ident, active, last_name, first_name, email, home_siret)
    return who, [tuple(r[skip + 6 : skip + 9]) for r in rows if r[skip + 6] is not None]


def read_rule(
    session: Session | Connection,
    declarant_id: str,
    service_ids: Iterable[int],
    now: datetime | None = None,
) -> tuple[Holder | None, list[Held]]:
    """The declarant ``declarant_id`` (None when unknown) and their rights in force at
    ``now`` (the rules' clock by default) on ``service_ids`` only, in one statement (on
    ``session``'s connection, or on the Core ``connection`` given)."""
    params = rule_params(now, declarant=declarant_id, services=list(service_ids))
    connection = session if isinstance(session, Connection) else session.connection()
    return rule_of(connection.execute(_RULE, params).all())


def vector_of(
    who: Holder,
    codes: Mapping[int, str],
    held: Iterable[Held],
    pagm_of: Mapping[tuple[int, str], str],
    *,
    acr: str = ACR_PASSWORD,
    auth_time: datetime | None = None,
    session_index: str | None = None,
    include_email: bool = False,
) -> IdentityVector:
    """The vector of ``who`` for the services ``codes`` (id -> code) only: the PAGM and
    habilitations of the rights ``held`` on them, nothing else (docs/profile.md, "PAGM et
    minimisation")."""
    mine = [h for h in held if h[0] in codes]
    pagm = sorted({pagm_of[(s, role)] for s, _siret, role in mine if (s, role) in pagm_of})
    rights = sorted({Right(codes[s], siret, role) for s, siret, role in mine})
    return IdentityVector(
        subject=who.id,
        siret=who.home_siret,
        family_name=who.last_name,
        given_name=who.first_name,
        email=who.email if include_email else None,
        pagm=tuple(pagm),
        habilitations=tuple(rights),
        acr=acr,
        auth_time=auth_time,
        session_index=session_index,
    )


def service_codes(services: Collection[Service]) -> dict[int, str]:
    """Service id -> code, for :func:`vector_of`."""
    return {s.id: s.code for s in services}
