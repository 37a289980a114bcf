"""DSN-style machine login: XML in, short-lived signed token out, DSNLogin header accepted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from idp.tokens.signing import ensure_keys, keyring
from keys.jwks import jwks
from keys.model import KeyUse
from rcd_store import services
from rcd_store.models import Service
from tests import factories
from tests.idp.login_support import setup_directory
from token_suite import jwt as interops_jwt

URL = "/authentifier/1.0/"
XML = "application/xml"


def body(
    *,
    siret: str = factories.SIRET_A,
    nom: str = "DUPONT",
    prenom: str = "elodie",
    motdepasse: str = factories.PASSWORD,
    service: str = "DSN",
) -> bytes:
    return (
        f"<identifiants><siret>{siret}</siret><nom>{nom}</nom><prenom>{prenom}</prenom>"
        f"<motdepasse>{motdepasse}</motdepasse><service>{service}</service>"
        "</identifiants>"
    ).encode()


@pytest.fixture
def declarant(app: Any, session: Any) -> Any:
    ensure_keys(app)
    found = setup_directory(session)
    factories.service(session, code="DUCS", partner="URSSAF")
    session.get(Service, session.query(Service.id).filter_by(code="DSN").scalar()).numeric_id = 42
    services.grant_habilitation(
        session, declarant_id=found.id, siret=factories.SIRET_A, service_code="DSN"
    )
    session.commit()
    return found


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def test_login_returns_a_signed_token_for_the_service(
    app: Any, client: Any, declarant: Any
) -> None:
    response = client.post(URL, data=body(), content_type=XML)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    token = response.get_data(as_text=True)
    trust = interops_jwt.trust_from_jwks(
        jwks(keyring(app).published(KeyUse.JWT)), issuer="http://idp.test"
    )
    vector = interops_jwt.verify(token, trust=trust, audience="urn:interops:partenaire:urssaf")
    assert vector.subject == declarant.id
    assert vector.pagm == ("DSN_DECL",)
    assert vector.claims["exp"] - vector.claims["iat"] <= 300
    assert vector.claims["exp"] > datetime.now(UTC).timestamp()


def test_service_by_numeric_id(client: Any, declarant: Any) -> None:
    assert client.post(URL, data=body(service="42"), content_type=XML).status_code == 200


def test_token_is_accepted_as_dsnlogin_header(client: Any, declarant: Any) -> None:
    token = client.post(URL, data=body(), content_type=XML).get_data(as_text=True)
    for _ in range(2):  # presented on every call of its life
        checked = client.get(URL + "verifier", headers={"Authorization": f"DSNLogin jeton={token}"})
        assert checked.status_code == 200
        assert checked.get_json()["sub"] == declarant.id
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    bad = client.get(URL + "verifier", headers={"Authorization": f"DSNLogin jeton={tampered}"})
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"] == 'DSNLogin error="jeton"'
    missing = client.get(URL + "verifier")
    assert missing.status_code == 401 and "DSNLogin" in missing.headers["WWW-Authenticate"]


def test_a_navigation_token_for_the_same_partner_is_refused(
    app: Any, session: Any, client: Any, declarant: Any
) -> None:
    """A navigation Interops-R token carries the same audience (the service host's
    identifier) but is not a DSN login token: its type tells them apart."""
    from idp.tokens.issuing import token_service, vector_for

    token = client.post(URL, data=body(), content_type=XML).get_data(as_text=True)
    assert interops_jwt_header(token)["typ"] == "dsnlogin+jwt"
    with app.app_context():
        service = session.query(Service).filter_by(code="DSN").one()
        vector = vector_for(session, declarant, [service])
        navigation = token_service().issue(
            session, vector, fmt="jwt", audience="urn:interops:partenaire:urssaf"
        )
        session.commit()
    assert interops_jwt_header(navigation.token)["typ"] == "JWT"
    refused = client.get(
        URL + "verifier", headers={"Authorization": f"DSNLogin jeton={navigation.token}"}
    )
    assert refused.status_code == 401


def interops_jwt_header(token: str) -> dict[str, Any]:
    import base64
    import json

    segment = token.split(".", 1)[0]
    return dict(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))


@pytest.mark.parametrize(
    "change, error",
    [
        ({"motdepasse": "pas le bon mot de passe"}, "identifiants"),
        ({"siret": factories.SIRET_B}, "identifiants"),
        ({"nom": "Durand"}, "identifiants"),
        ({"service": "DUCS"}, "service"),  # exists, not habilitated
        ({"service": "INCONNU"}, "service"),
    ],
)
def test_failures_are_401_with_a_reason(
    client: Any, declarant: Any, change: dict[str, str], error: str
) -> None:
    response = client.post(URL, data=body(**change), content_type=XML)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'DSNLogin error="{error}"'


def test_locked_account_is_403_and_shares_the_page_lockout(client: Any, declarant: Any) -> None:
    from tests.idp.login_support import login_siret

    for _ in range(3):
        assert (
            client.post(URL, data=body(motdepasse="faux faux faux"), content_type=XML).status_code
            == 401
        )
    for _ in range(2):
        login_siret(client, password="faux faux faux")
    locked = client.post(URL, data=body(), content_type=XML)
    assert locked.status_code == 403 and "Retry-After" in locked.headers
    assert login_siret(client).status_code == 429


@pytest.mark.parametrize(
    "document",
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE identifiants [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<identifiants><siret>&x;</siret></identifiants>"
        ),
        b'<!DOCTYPE a [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><identifiants>&b;</identifiants>',
        b"<identifiants><siret>1</siret>",
        b"<autre/>",
        b"",
    ],
)
def test_hostile_or_malformed_xml_is_refused(client: Any, declarant: Any, document: bytes) -> None:
    response = client.post(URL, data=document, content_type=XML)
    assert response.status_code == 400
    assert "passwd" not in response.get_data(as_text=True)


def test_body_size_is_bounded(client: Any, declarant: Any) -> None:
    big = b"<identifiants>" + b" " * (64 * 1024) + b"</identifiants>"
    assert client.post(URL, data=big, content_type=XML).status_code == 413


def test_no_csrf_needed(client: Any, declarant: Any) -> None:
    # no cookie, no form token: the machine login is exempt (it carries no ambient credential)
    assert client.post(URL, data=body(), content_type=XML).status_code == 200


# ------------------------------------------------ lock and second factor (issue 13 item 2)


def _from(app: Any, address: str) -> Any:
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = address
    return browser


def _enrol_totp(app: Any, session: Any, declarant: Any) -> None:
    from idp.auth import second_factor as totp

    with app.app_context():
        sealed = totp.seal_secret(declarant.id, totp.new_secret())
    declarant.totp_secret = sealed
    session.commit()


def test_a_declarant_with_a_second_factor_gets_no_token_with_the_password_alone(
    app: Any, session: Any, declarant: Any
) -> None:
    _enrol_totp(app, session, declarant)
    response = app.test_client().post(URL, data=body(), content_type=XML)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"] == 'DSNLogin error="double_authentification"'
    assert "double authentification" in response.get_json()["error_description"]
    wrong = app.test_client().post(URL, data=body(motdepasse="faux faux"), content_type=XML)
    assert wrong.headers["WWW-Authenticate"] == 'DSNLogin error="identifiants"'  # no oracle


@pytest.mark.parametrize("second_factor", [False, True])
def test_the_account_lock_holds_from_any_address(
    app: Any, session: Any, declarant: Any, second_factor: bool
) -> None:
    """Issue 13: after the lock, the right password from another address got a token (each
    new address had five more guesses)."""
    if second_factor:
        _enrol_totp(app, session, declarant)
    attacker = _from(app, "192.0.2.66")
    for _ in range(5):
        assert attacker.post(URL, data=body(motdepasse="faux"), content_type=XML).status_code == 401
    for address in ("192.0.2.10", "198.51.100.7"):
        locked = _from(app, address).post(URL, data=body(), content_type=XML)
        assert locked.status_code == 403, (address, locked.get_data(as_text=True))
        assert locked.get_json()["error"] == "verrouille" and "Retry-After" in locked.headers
    guesses = _from(app, "203.0.113.9").post(URL, data=body(motdepasse="x"), content_type=XML)
    assert guesses.status_code == 403  # no fresh guesses from a new address
