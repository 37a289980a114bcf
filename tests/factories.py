"""Factories for directory data used across tests."""

from __future__ import annotations

from typing import Any

from rcd_store import services
from rcd_store.passwords import PasswordService

PASSWORD = "cheval agrafe pile correcte"
SIRET_A = "73282932000074"
SIRET_A2 = "73282932000082"
SIRET_B = "44306184100013"
SIRET_FIRM = "55208131700018"

_passwords = PasswordService()


def company(session: Any, siret: str = SIRET_A, name: str = "Boulangerie Dupont") -> Any:
    return services.add_company(session, siret=siret, name=name)


def service(
    session: Any, code: str = "DSN", partner: str = "URSSAF", pagm: dict[str, str] | None = None
) -> Any:
    return services.add_service(
        session,
        code=code,
        name=f"Service {code}",
        partner=partner,
        pagm=pagm or {"DECLARANT": f"{code}_DECL"},
    )


def declarant(
    session: Any,
    siret: str = SIRET_A,
    last: str = "Dupont",
    first: str = "Élodie",
    email: str | None = "elodie@dupont.example",
    admin: bool = False,
) -> Any:
    return services.add_declarant(
        session,
        siret=siret,
        last_name=last,
        first_name=first,
        email=email,
        password=PASSWORD,
        passwords=_passwords,
        admin=admin,
    )
