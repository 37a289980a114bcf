"""Set-ups of the operator console tests: an operator with a second factor, a declarant
who is none, SSO sessions opened with or without the code, the console's routes with
their ids filled in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp.console import operators
from partners.models import OAuthClient
from partners.services import ClientSettings, PartnerSettings, add_partner
from tests import factories as f
from token_suite.vector import ACR_PASSWORD, ACR_TOTP

OPERATOR_EMAIL = "oscar@operateur.example"


@dataclass
class Console:
    operator: str
    totp: str  # the operator's TOTP secret (clear, for pyotp)
    plain: str  # a declarant who is not an operator
    bare_operator: str  # an operator without a second factor
    partner: int
    client: int


def enrol(app: Any, session: Any, declarant: Any) -> str:
    """Give ``declarant`` a TOTP second factor; its clear secret."""
    from idp.auth import second_factor

    secret = second_factor.new_secret()
    with app.app_context():
        declarant.totp_secret = second_factor.seal_secret(declarant.id, secret)
    session.commit()
    return secret


def set_up(app: Any, session: Any) -> Console:
    """Service DSN, partner URSSAF with a confidential client, an operator with TOTP, an
    operator without, and a plain declarant."""
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    f.service(session, "DSN", "URSSAF")
    f.service(session, "ATMP", "Assurance Maladie")
    oscar = f.declarant(session, last="Opérateur", first="Oscar", email=OPERATOR_EMAIL)
    olga = f.declarant(session, last="Opératrice", first="Olga", email="olga@operateur.example")
    plain = f.declarant(session)
    add_partner(
        session,
        PartnerSettings(
            name="URSSAF",
            services=["DSN"],
            client=ClientSettings(
                client_id="urssaf-web",
                redirect_uris=["https://urssaf.example/retour"],
                origins=["https://urssaf.example"],
            ),
        ),
    )
    session.commit()
    for email in (OPERATOR_EMAIL, "olga@operateur.example"):
        operators.grant(session, email, actor="cli")
    session.commit()
    secret = enrol(app, session, oscar)
    client = session.scalars(select(OAuthClient.id)).one()
    partner = session.scalars(select(OAuthClient.partner_id)).one()
    return Console(oscar.id, secret, plain.id, olga.id, partner, client)


def log_in(app: Any, declarant_id: str, *, second_factor: bool = True) -> Any:
    """A test client whose SSO session was opened with the password, and the code."""
    from idp.sessions import sso as sessions
    from idp.stores import db

    client = app.test_client()
    amr = ["pwd", "otp"] if second_factor else ["pwd"]
    acr = ACR_TOTP if second_factor else ACR_PASSWORD
    with app.test_request_context():
        opened = sessions.open_session(db.session(), declarant_id, acr=acr, amr=amr)
        db.session().commit()
    client.set_cookie(sessions.COOKIE, opened.cookie)
    return client


def routes(app: Any) -> list[tuple[str, str, Any]]:
    """(endpoint, method, rule) of every console route (read from the URL map)."""
    from tests.administration.pages_support import routes as blueprint_routes

    return blueprint_routes(app, "console")


def urls(app: Any, c: Console) -> list[tuple[str, str]]:
    """(method, URL) of every console route with this set-up's ids."""
    ids = {"partner_id": c.partner, "client_pk": c.client}
    found = []
    for _, method, rule in routes(app):
        _, url = rule.build({n: ids[n] for n in rule.arguments}, append_unknown=False)
        found.append((method, str(url)))
    return found
