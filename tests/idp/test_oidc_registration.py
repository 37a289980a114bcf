"""OpenID Connect ``prompt=create`` through the Flask client: the request is validated by
Authlib, kept in a signed cookie while the person enrols their company or asks to join
it, then resumed; the code is for the NEW account, and only once it may log in. A join
request waiting for its administrators ends the request with ``registration_pending``
and no code; bad input gets a clear error and changes nothing."""

from __future__ import annotations

import html
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from idp.stores.models import AuthorizationCode
from rcd_store.enrolment.people import Identity
from rcd_store.models import Declarant
from tests.enrolment import pages_support as p
from tests.enrolment import support as s
from tests.idp.login_support import csrf
from tests.idp.oauth_support import (
    REDIRECT,
    auth_params,
    basic,
    consent,
    log_in,
    pkce,
    query_of,
)
from tests.idp.registration_support import ADMIN_OF_OTHER, registration_world
from token_suite import jwt as interops_jwt
from token_suite.jwt import trust_from_jwks

CLIENT = "portail"
ISSUER = "http://idp.test"


@pytest.fixture
def world(app: Any, session: Any) -> Any:
    return registration_world(app, session, client_id=CLIENT, redirect_uris=(REDIRECT,))


@pytest.fixture
def browser(app: Any, world: Any) -> Any:
    return app.test_client()


def _params(challenge: str, **extra: str) -> dict[str, str]:
    return auth_params(CLIENT, challenge=challenge, prompt="create", **extra)


def _codes(session: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(AuthorizationCode)))


def _start(browser: Any, challenge: str, **extra: str) -> Any:
    answer = browser.get("/oauth/authorize", query_string=_params(challenge, **extra))
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"] == "/creer-un-compte"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("idp_inscription=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    return answer


def _resume(browser: Any) -> Any:
    """« Continuer »: back to the authorization request kept, followed once."""
    back = browser.get("/creer-un-compte/suite")
    assert back.status_code == 303, back.text
    target = urlsplit(back.headers["Location"])
    assert target.path == "/oauth/authorize" and "prompt" not in target.query
    return browser.get(back.headers["Location"])


def _redeem(browser: Any, world: Any, code: str, verifier: str) -> dict[str, Any]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    answer = browser.post("/oauth/token", data=data, headers=basic(CLIENT, world.secret))
    assert answer.status_code == 200, answer.text
    return dict(answer.json)


def _declarant_id(session: Any, email: str) -> str:
    session.expire_all()
    return str(session.scalars(select(Declarant.id).where(Declarant.email == email)).one())


def test_discovery_advertises_prompt_create(browser: Any) -> None:
    document = browser.get("/.well-known/openid-configuration").json
    assert document["prompt_values_supported"] == ["none", "login", "consent", "create"]


def test_prompt_create_shows_the_choices_even_to_a_logged_in_person(
    app: Any, browser: Any, session: Any
) -> None:
    someone = s.person(session, s.SIRET_ELSEWHERE, "Jean", "Vieux", "jean@autre.example")
    session.commit()
    log_in(app, browser, someone.id)  # an older session: not who is registering
    _verifier, challenge = pkce()
    _start(browser, challenge)
    page = browser.get("/creer-un-compte")
    assert page.status_code == 200 and page.headers["Cache-Control"].startswith("no-store")
    assert "Portail Identité vous propose de créer votre compte Interops" in page.text
    for link in ('href="/inscription"', 'href="/rejoindre"', 'href="/creer-un-compte/suite"'):
        assert link in page.text
    assert _codes(session) == 0


def test_enrolment_ends_with_a_code_for_the_new_declarant(
    app: Any, browser: Any, session: Any, world: Any
) -> None:
    someone = s.person(session, s.SIRET_ELSEWHERE, "Jean", "Vieux", "jean@autre.example")
    session.commit()
    log_in(app, browser, someone.id)
    verifier, challenge = pkce()
    _start(browser, challenge, state="etat-inscription")
    sent = p.submit(browser, "/inscription", p.form(s.CANDIDATE))
    assert sent.status_code == 200, sent.text
    assert "Continuer vers Portail Identité" in sent.text  # the cookie now names the account
    early = _resume(browser)  # before the address is verified: asked to verify it first
    assert early.status_code == 200 and 'id="inscription-a-confirmer"' in early.text
    assert "code=" not in early.text and _codes(session) == 0
    verified = p.verify(browser, app, s.CANDIDATE.email)
    assert "Continuer vers Portail Identité" in verified.text
    to_login = _resume(browser)  # the older session is someone else's: log in again
    assert to_login.status_code == 302
    assert (
        to_login.headers["Location"].startswith("/connexion?")
        and "force=1" in to_login.headers["Location"]
    )
    p.login(browser, s.CANDIDATE)
    asked = _resume(browser)  # logged in as the new account: its consent, once
    assert asked.status_code == 200 and "Autoriser" in asked.text
    kept = {k: v for k, v in _params(challenge, state="etat-inscription").items() if k != "prompt"}
    answer = consent(browser, kept)
    assert answer.status_code in (302, 303), answer.text
    query = query_of(answer.headers["Location"])
    assert answer.headers["Location"].startswith(REDIRECT)
    assert query["state"] == "etat-inscription" and query["iss"] == ISSUER
    tokens = _redeem(browser, world, query["code"], verifier)
    vector = interops_jwt.verify(
        tokens["id_token"],
        trust=trust_from_jwks(browser.get("/.well-known/jwks.json").json),
        audience=CLIENT,
        issuer=ISSUER,
    )
    assert vector.subject == _declarant_id(session, s.CANDIDATE.email) != someone.id
    # identity-only partner: no habilitation set up, none needed
    assert vector.habilitations == () and vector.pagm == ()
    assert vector.family_name == s.CANDIDATE.last_name


def test_a_join_request_waiting_for_its_administrators_gets_no_code(
    app: Any, browser: Any, session: Any
) -> None:
    _verifier, challenge = pkce()
    _start(browser, challenge, state="etat-rejoindre")
    assert p.submit(browser, "/rejoindre", p.form(s.JOINER, s.SIRET_ELSEWHERE)).status_code == 200
    p.verify(browser, app, s.JOINER.email)
    waiting = _resume(browser)
    assert waiting.status_code == 200
    assert 'id="inscription-en-attente"' in waiting.text
    assert "attend la décision de ses administrateurs" in html.unescape(waiting.text)
    assert "idp_inscription=;" in waiting.headers["Set-Cookie"]  # the registration ends
    back = hidden_back(waiting.text)
    assert back.startswith(REDIRECT)
    query = query_of(back)
    assert query["error"] == "registration_pending" and "code" not in query
    assert query["state"] == "etat-rejoindre" and query["iss"] == ISSUER
    assert _codes(session) == 0


def hidden_back(page: str) -> str:
    found = re.search(r'href="([^"]+)" id="retour-partenaire"', page)
    assert found, page
    return found.group(1).replace("&amp;", "&")


def test_the_kept_request_only_steers_itself(app: Any, browser: Any, session: Any) -> None:
    """Another authorization request in the same browser is not taken for the kept one."""
    _verifier, challenge = pkce()
    _start(browser, challenge, state="etat-gardé")
    assert p.submit(browser, "/rejoindre", p.form(s.JOINER, s.SIRET_ELSEWHERE)).status_code == 200
    other = browser.get("/oauth/authorize", query_string=auth_params(CLIENT, challenge=challenge))
    assert other.status_code == 302 and other.headers["Location"].startswith("/connexion?")
    kept = _resume(browser)  # the kept one is: its account has not verified its address
    assert kept.status_code == 200 and 'id="inscription-a-confirmer"' in kept.text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"prompt": "none create"}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"state": secrets.token_urlsafe(2400)}, "invalid_request"),  # too long to keep
    ],
    ids=["none-with-create", "no-pkce", "plain-pkce", "bad-response-type", "state-too-long"],
)
def test_bad_requests_are_refused_by_redirect_and_keep_nothing(
    browser: Any, db_snapshot: Any, change: dict[str, str | None], expected: str
) -> None:
    _verifier, challenge = pkce()
    params = {k: v for k, v in {**_params(challenge), **change}.items() if v is not None}
    before = db_snapshot()
    answer = browser.get("/oauth/authorize", query_string=params)
    assert answer.status_code == 302, answer.text
    assert query_of(answer.headers["Location"])["error"] == expected
    assert "idp_inscription" not in answer.headers.get("Set-Cookie", "")
    assert db_snapshot() == before


@pytest.mark.parametrize(
    "change",
    [{"client_id": "inconnu"}, {"redirect_uri": "https://evil.example/cb"}],
    ids=["unknown-client", "unregistered-redirect"],
)
def test_bad_clients_get_an_error_page_and_keep_nothing(
    browser: Any, db_snapshot: Any, change: dict[str, str]
) -> None:
    _verifier, challenge = pkce()
    before = db_snapshot()
    answer = browser.get("/oauth/authorize", query_string={**_params(challenge), **change})
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "Demande d'autorisation invalide" in html.unescape(answer.text)
    assert "idp_inscription" not in answer.headers.get("Set-Cookie", "")
    assert db_snapshot() == before


@pytest.mark.parametrize("cookie", [None, "forgé", "e30.Zm9yZ2U.c2lnbmF0dXJl"])
def test_choices_and_resumption_need_a_genuine_registration(
    browser: Any, cookie: str | None
) -> None:
    if cookie is not None:
        browser.set_cookie("idp_inscription", cookie)
    for path in ("/creer-un-compte", "/creer-un-compte/suite"):
        answer = browser.get(path)
        assert answer.status_code == 400 and "Location" not in answer.headers
        assert "Aucune création de compte n'est en cours dans ce navigateur" in html.unescape(
            answer.text
        )


def test_forms_without_a_registration_are_unchanged(browser: Any) -> None:
    """The enrolment pages outside a registration offer no « Continuer »."""
    sent = p.submit(browser, "/inscription", p.form(s.CANDIDATE))
    assert sent.status_code == 200 and "suite-partenaire" not in sent.text
    assert "idp_inscription" not in sent.headers.get("Set-Cookie", "")
    assert csrf(browser, "/inscription")


def test_an_invitation_accepted_ends_with_a_code_for_the_invitee(
    app: Any, browser: Any, session: Any, world: Any
) -> None:
    from idp.stores.sealing import app_sealer
    from rcd_store import administration as adm
    from rcd_store.models import Establishment
    from tests.administration.pages_support import post
    from tests.administration.support import outbox_link

    company = session.scalars(
        select(Establishment.company_id).where(Establishment.siret == s.SIRET_ELSEWHERE)
    ).one()
    invitee = adm.invite_declarant(
        session,
        company_id=company,
        actor=_declarant_id(session, ADMIN_OF_OTHER),
        last_name="Nouvelle",
        first_name="Nina",
        email="nina@autre.example",
        sealer=app_sealer(app),
        base_url=ISSUER,
    )
    session.commit()
    verifier, challenge = pkce()
    _start(browser, challenge, state="etat-invitation")
    token = outbox_link(app, "nina@autre.example").split("jeton=")[1]
    done = post(
        browser,
        "/invitation",
        {"jeton": token, "mot_de_passe": s.PASSWORD, "confirmation": s.PASSWORD},
    )
    assert done.status_code == 200 and "Continuer vers Portail Identité" in done.text
    assert _resume(browser).headers["Location"].startswith("/connexion?")
    p.login(browser, Identity("Nouvelle", "Nina", "nina@autre.example", s.PASSWORD))
    kept = {k: v for k, v in _params(challenge, state="etat-invitation").items() if k != "prompt"}
    query = query_of(consent(browser, kept).headers["Location"])
    tokens = _redeem(browser, world, query["code"], verifier)
    claims = interops_jwt.verify(
        tokens["id_token"],
        trust=trust_from_jwks(browser.get("/.well-known/jwks.json").json),
        audience=CLIENT,
        issuer=ISSUER,
    )
    assert claims.subject == invitee
