"""A world for the API tests: client company A (its administrator habilitated on DSN),
company B (its administrator on DUCS), the firm F (administrator and accountant); the
partners URSSAF (shares DSN) and CNAV (shares DUCS), each with a reading client
(client credentials, ``rcd.read``); a company tool ``outil-admin`` (code flow,
``openid rcd.admin``) and tokens for all of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp.tokens.signing import ensure_keys
from partners.services import ClientSettings, PartnerSettings, add_partner
from rcd_store import services
from tests import factories as f
from tests.idp.oauth_support import REDIRECT, auth_params, basic, get_code, log_in
from tests.mandates.support import world

TOOL = "outil-admin"


@dataclass
class ApiWorld:
    client_id: int
    other_id: int
    firm_id: int
    client_admin: str
    other_admin: str
    firm_admin: str
    accountant: str
    secrets: dict[str, str]


def _client(name: str, client_id: str, services_: list[str], **client: Any) -> PartnerSettings:
    return PartnerSettings(
        name=name, services=services_, client=ClientSettings(client_id=client_id, **client)
    )


def api_world(app: Any, session: Any) -> ApiWorld:
    ensure_keys(app)
    w = world(session)
    other = f.company(session, siret=f.SIRET_B, name="Bernard SA")
    f.service(session, "DUCS", partner="CNAV")
    other_admin = f.declarant(
        session, siret=f.SIRET_B, last="Bernard", first="Luc", email="luc@b.example", admin=True
    )
    for person, siret, code in (
        (w.client_admin, f.SIRET_A, "DSN"),
        (other_admin, f.SIRET_B, "DUCS"),
    ):
        services.grant_habilitation(session, declarant_id=person.id, siret=siret, service_code=code)
    secrets: dict[str, str] = {}
    readers = (("URSSAF", "urssaf-reader", ["DSN"]), ("CNAV", "cnav-reader", ["DUCS"]))
    for name, client_id, shared in readers:
        settings = _client(
            name, client_id, shared, scopes=("rcd.read",), grants=("client_credentials",)
        )
        secrets[client_id] = add_partner(session, settings).client_secret or ""
    tool = _client(
        "Outil Boulangerie",
        TOOL,
        [],
        redirect_uris=(REDIRECT,),
        scopes=("openid", "rcd.admin"),
        grants=("authorization_code", "client_credentials"),
    )
    secrets[TOOL] = add_partner(session, tool).client_secret or ""
    session.commit()
    return ApiWorld(
        w.client_id,
        other.company_id,
        w.firm_id,
        w.client_admin.id,
        other_admin.id,
        w.firm_admin.id,
        w.accountant.id,
        secrets,
    )


def machine_token(app: Any, api: ApiWorld, client_id: str, scope: str) -> str:
    """A client-credentials access token for this API."""
    response = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        headers=basic(client_id, api.secrets[client_id]),
    )
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def admin_token(app: Any, api: ApiWorld, declarant_id: str, scope: str = "openid rcd.admin") -> str:
    """The tool's access token after ``declarant_id`` logged in and consented."""
    browser = app.test_client()
    log_in(app, browser, declarant_id)
    code = get_code(browser, auth_params(TOOL, scope=scope))
    response = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic(TOOL, api.secrets[TOOL]),
    )
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
