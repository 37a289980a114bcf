"""Token confusion (issue 13 item 5): each kind of token we sign has its own ``typ`` and an
audience only its use can carry, and every place that accepts our tokens checks both.

The world of :mod:`tests.idp.oauth_a2a_support`: URSSAF (client ``urssaf-app``, hence
identifier ``urssaf-app``) hosts DSN; CNAV (``cnav-app``) hosts DUCS and shares DSN with
URSSAF. The DSN verifier (``GET /authentifier/1.0/verifier``) accepts a token whose
audience is the host of one of our services: ``urssaf-app`` or ``cnav-app`` here, the very
values that are also OAuth client ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests import factories
from tests.idp.oauth_a2a_support import (
    A2A,
    ACCESS_TOKEN_TYPE,
    CNAV_API,
    EXCHANGE,
    URSSAF_API,
    code_flow_tokens,
    header_of,
    setup_a2a,
    token_request,
)
from tests.idp.oauth_support import log_in

DSN_LOGIN = "/authentifier/1.0/"


@pytest.fixture
def world(app: Any, session: Any) -> A2A:
    return setup_a2a(app, session)


def dsn_token(app: Any) -> str:
    body = (
        f"<identifiants><siret>{factories.SIRET_A}</siret><nom>DUPONT</nom>"
        f"<prenom>elodie</prenom><motdepasse>{factories.PASSWORD}</motdepasse>"
        "<service>DSN</service></identifiants>"
    ).encode()
    response = app.test_client().post(DSN_LOGIN, data=body, content_type="application/xml")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def verifier(app: Any, token: str) -> Any:
    return app.test_client().get(
        DSN_LOGIN + "verifier", headers={"Authorization": f"DSNLogin jeton={token}"}
    )


def access_token_for(app: Any, audience: str, **extra: Any) -> str:
    """An access token of ``urssaf-app`` aimed at ``audience``, minted past the request
    checks (what a client obtained before they existed, or any other path to one)."""
    from idp.oidc.server import issue_access_token
    from idp.stores import db
    from partners.services import client_by_id

    with app.test_request_context():
        session = db.session()
        client = client_by_id(session, "urssaf-app")
        assert client is not None
        token, _row = issue_access_token(
            session, client, None, "", now=datetime.now(UTC), audience=audience, **extra
        )
        session.commit()
    return token


def exchange(app: Any, world: A2A, subject: str, **target: str) -> Any:
    data = {
        "grant_type": EXCHANGE,
        "subject_token": subject,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        **target,
    }
    return token_request(app.test_client(), world, "urssaf-app", data)


def test_each_kind_of_token_has_its_own_type(app: Any, world: A2A) -> None:
    tokens = code_flow_tokens(app, world)
    assert header_of(tokens["access_token"])["typ"] == "at+jwt"  # RFC 9068
    assert "typ" not in header_of(tokens["id_token"])  # OpenID Connect ID token
    assert header_of(dsn_token(app))["typ"] == "dsnlogin+jwt"  # its own kind (docs/profile.md)


@pytest.mark.parametrize("resource", ["cnav-app", "urssaf-app", "cnav-batch"])
def test_resource_naming_a_partner_or_a_client_is_refused(
    app: Any, world: A2A, resource: str
) -> None:
    """URSSAF shares DSN with CNAV: it may ask for CNAV's API, never for CNAV's identifier
    (which is also CNAV's client id and the audience of CNAV's DSN logins)."""
    for grant in ({"grant_type": "client_credentials", "resource": resource},):
        refused = token_request(app.test_client(), world, "urssaf-app", grant)
        assert refused.status_code == 400, refused.json
        assert refused.json["error"] == "invalid_target"
    subject = code_flow_tokens(app, world)["access_token"]
    for name in ("resource", "audience"):
        refused = exchange(app, world, subject, **{name: resource})
        assert refused.status_code == 400 and refused.json["error"] == "invalid_target"
    genuine = token_request(
        app.test_client(),
        world,
        "urssaf-app",
        {"grant_type": "client_credentials", "resource": CNAV_API},
    )
    assert genuine.status_code == 200, genuine.json
    assert exchange(app, world, subject, resource=CNAV_API).status_code == 200


def test_the_dsn_verifier_accepts_dsn_logins_only(app: Any, world: A2A) -> None:
    genuine = verifier(app, dsn_token(app))
    assert genuine.status_code == 200, genuine.json
    assert genuine.json["aud"] == "urssaf-app"
    tokens = code_flow_tokens(app, world)
    # the ID token of urssaf-app: aud = urssaf-app, the DSN host's identifier
    assert verifier(app, tokens["id_token"]).status_code == 401
    # access tokens, plain or exchanged, aimed at a DSN host's identifier
    assert verifier(app, access_token_for(app, "cnav-app")).status_code == 401
    exchanged = access_token_for(app, "cnav-app", extra_claims={"act": {"sub": "urssaf-app"}})
    refused = verifier(app, exchanged)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'DSNLogin error="jeton"'
    assert verifier(app, tokens["access_token"]).status_code == 401


def test_a_dsn_login_token_is_no_id_token_hint(app: Any, world: A2A) -> None:
    """The DSN login's audience is urssaf-app, a client id: still not an ID token, so it
    neither logs the declarant out nor opens the client's post-logout redirect."""
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    refused = browser.get("/oauth/logout", query_string={"id_token_hint": dsn_token(app)})
    assert refused.status_code == 400
    hint = code_flow_tokens(app, world)["id_token"]
    accepted = browser.get("/oauth/logout", query_string={"id_token_hint": hint})
    assert accepted.status_code == 200 and "Location" not in accepted.headers


def test_userinfo_takes_the_clients_own_login_token_only(app: Any, world: A2A) -> None:
    """An access token exchanged for CNAV's API (it carries openid and a person) does not
    open URSSAF's view of the declarant at userinfo: only the client's own login token."""
    tokens = code_flow_tokens(app, world)
    exchanged = exchange(app, world, tokens["access_token"], resource=CNAV_API)
    assert exchanged.status_code == 200, exchanged.json

    def userinfo(token: str) -> Any:
        return app.test_client().get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {token}"}
        )

    refused = userinfo(exchanged.json["access_token"])
    assert refused.status_code == 401 and refused.json["error"] == "invalid_token"
    assert userinfo(tokens["id_token"]).status_code == 401
    assert userinfo(tokens["access_token"]).json["sub"] == world.declarant_id


def test_introspection_by_the_api_audience_only(app: Any, world: A2A) -> None:
    """A resource server learns about tokens aimed at its API, not at its identifier."""
    from tests.idp.oauth_support import basic

    def introspect(token: str) -> Any:
        return app.test_client().post(
            "/oauth/introspect",
            data={"token": token},
            headers=basic("cnav-app", world.secrets["cnav-app"]),
        )

    assert introspect(access_token_for(app, CNAV_API)).json["active"] is True
    assert introspect(access_token_for(app, "cnav-app")).json == {"active": False}
    assert introspect(access_token_for(app, URSSAF_API)).json == {"active": False}


def test_access_and_interops_tokens_come_from_the_apps_one_token_service(
    app: Any, world: A2A, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.tokens.issuing import TokenService, token_service

    service = token_service(app)
    assert isinstance(service, TokenService)
    seen: list[str] = []
    for name in ("issue", "issue_access"):
        original = getattr(service, name)

        def spy(*args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            seen.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(service, name, spy)
    tokens = code_flow_tokens(app, world)
    assert seen == ["issue_access"] and header_of(tokens["access_token"])["typ"] == "at+jwt"
    assert header_of(dsn_token(app))["typ"] == "dsnlogin+jwt"
    assert seen == ["issue_access", "issue"]
