"""Shared data of the enrolment tests: a company known from SIRENE data (with its legal
representative and postal address), a service, and the people who enrol or join."""

from __future__ import annotations

from typing import Any

from rcd_store import services
from rcd_store.enrolment.people import Identity
from rcd_store.passwords import PasswordService
from tests import factories as f

PASSWORD = f.PASSWORD
SIRET = f.SIRET_A
SIRET_OTHER_ESTABLISHMENT = f.SIRET_A2
SIRET_ELSEWHERE = f.SIRET_B
#: passes Luhn, but no establishment and no SIRENE data carries it
SIRET_UNKNOWN = "40483304800022"
passwords = PasswordService()

CANDIDATE = Identity("Martin", "Camille", "camille@boulangerie.example", PASSWORD)
JOINER = Identity("Bernard", "Louis", "louis@boulangerie.example", PASSWORD)


def company(session: Any) -> Any:
    """The company (two establishments) and another one, as the SIRENE import leaves them."""
    head = services.add_company(
        session,
        siret=SIRET,
        name="Boulangerie Dupont",
        representative="Élodie Dupont",
        address="3 rue des Lilas 75011 Paris",
    )
    services.add_company(session, siret=SIRET_OTHER_ESTABLISHMENT, name="Boulangerie Dupont")
    services.add_company(
        session, siret=SIRET_ELSEWHERE, name="Autre SA", address="1 place Nette 69001 Lyon"
    )
    f.service(session)
    session.commit()
    return head


def person(session: Any, siret: str, first: str, last: str, email: str, admin: bool = False) -> Any:
    """An active declarant (administrator or member) of the company of ``siret``."""
    return f.declarant(session, siret=siret, last=last, first=first, email=email, admin=admin)
