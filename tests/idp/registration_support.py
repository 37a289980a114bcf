"""A partner open to identity-only use asking for registration (``prompt=create``): the
enrolment tests' companies (Boulangerie Dupont, not enrolled yet; Autre SA, enrolled,
with an administrator), and a partner whose one service is identity-only, with a
confidential OAuth client (code + PKCE)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partners.services import ClientSettings, PartnerSettings, add_partner
from rcd_store import services
from tests.enrolment import support as s

PARTNER = "Portail Identité"
SERVICE = "IDENTITE"
ADMIN_OF_OTHER = "admin@autre.example"
#: a third company, not enrolled yet (a second enrolment in the same test run)
SIRET_THIRD = "55203253410009"


@dataclass
class RegistrationWorld:
    client_id: str
    secret: str


def registration_world(
    app: Any,
    session: Any,
    *,
    client_id: str,
    redirect_uris: tuple[str, ...],
    origins: tuple[str, ...] = (),
) -> RegistrationWorld:
    """The companies, the identity-only partner and its client, the signing keys."""
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    s.company(session)
    s.person(session, s.SIRET_ELSEWHERE, "Alice", "Autre", ADMIN_OF_OTHER, admin=True)
    services.add_company(
        session,
        siret=SIRET_THIRD,
        name="Menuiserie Martin",
        representative="Paul Martin",
        address="2 rue du Bois 44000 Nantes",
    )
    services.add_service(
        session, code=SERVICE, name="Portail", partner=PARTNER, pagm={}, identity_only=True
    )
    registered = add_partner(
        session,
        PartnerSettings(
            name=PARTNER,
            services=[SERVICE],
            client=ClientSettings(
                client_id=client_id,
                redirect_uris=list(redirect_uris),
                origins=list(origins),
                scopes=("openid", "profile"),
                grants=("authorization_code",),
            ),
        ),
    )
    session.commit()
    assert registered.client_secret is not None
    return RegistrationWorld(client_id, registered.client_secret)
