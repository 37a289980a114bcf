"""A client company, a mandataire firm, their administrators and a firm declarant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rcd_store.mandates import lifecycle
from rcd_store.models import Establishment
from tests import factories as f

T0 = datetime(2030, 1, 1, 9, tzinfo=UTC)
SIRET_OTHER = "40483304800022"  # a third company, no mandate


@dataclass
class World:
    client_id: int
    firm_id: int
    client_admin: Any
    firm_admin: Any
    accountant: Any


def world(session: Any) -> World:
    """Client A (two establishments), firm F; DSN and ATMP services; no mandate yet."""
    client = f.company(session)
    f.company(session, siret=f.SIRET_A2)
    firm = f.company(session, siret=f.SIRET_FIRM, name="Cabinet Lefèvre")
    f.service(session)
    f.service(session, code="ATMP", partner="Assurance Maladie")
    client_admin = f.declarant(session, admin=True)
    firm_admin = f.declarant(
        session,
        siret=f.SIRET_FIRM,
        last="Martin",
        first="Paul",
        email="paul@cabinet.example",
        admin=True,
    )
    accountant = f.declarant(
        session, siret=f.SIRET_FIRM, last="Lefèvre", first="Claire", email="claire@cabinet.example"
    )
    session.flush()
    return World(client.company_id, firm.company_id, client_admin, firm_admin, accountant)


def terms(**overrides: Any) -> lifecycle.Terms:
    values: dict[str, Any] = {
        "services": ["DSN"],
        "kind": "cabinet",
        "establishments": [],
        "starts_at": T0,
        "ends_at": T0 + timedelta(days=30),
    }
    values.update(overrides)
    return lifecycle.Terms(**values)


def establishment(session: Any, siret: str) -> Establishment:
    from sqlalchemy import select

    return session.scalars(select(Establishment).where(Establishment.siret == siret)).one()
