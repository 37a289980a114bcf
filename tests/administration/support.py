"""Directory set-ups for the administration tests: two companies, each with an
administrator, members and services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from rcd_store.models import Company
from tests import factories as f

SIRET_B2 = "44306184100021"


@dataclass
class Directory:
    company_a: int
    company_b: int
    admin_a: str
    member_a: str
    admin_b: str
    member_b: str


def company_id(session: Any, siret: str) -> int:
    return int(session.scalar(select(Company.id).where(Company.siren == siret[:9])))


def two_companies(session: Any) -> Directory:
    """Company A (admin Alice, member Élodie) and company B (admin Bruno, member Brice),
    services DSN (two roles) and ATMP."""
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    f.company(session, f.SIRET_A2, "Boulangerie Dupont")
    f.company(session, f.SIRET_B, "Transports Martin")
    f.company(session, SIRET_B2, "Transports Martin")
    f.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL", "CONSULTATION": "DSN_CONS"})
    f.service(session, "ATMP", "Assurance Maladie")
    admin_a = f.declarant(session, last="Admin", first="Alice", email="alice@a.example", admin=True)
    member_a = f.declarant(session)
    admin_b = f.declarant(
        session, f.SIRET_B, last="Boss", first="Bruno", email="bruno@b.example", admin=True
    )
    member_b = f.declarant(
        session, f.SIRET_B, last="Martin", first="Brice", email="brice@b.example"
    )
    session.commit()
    return Directory(
        company_id(session, f.SIRET_A),
        company_id(session, f.SIRET_B),
        admin_a.id,
        member_a.id,
        admin_b.id,
        member_b.id,
    )


def outbox_link(app: Any, recipient: str) -> str:
    """The link of the last email delivered to ``recipient`` (the outbox delivered
    through the file sender, as the service would send it)."""
    from tests.outbox_support import last_email

    text = last_email(app, to=recipient).text
    return next(line.strip() for line in text.splitlines() if line.strip().startswith("http"))
