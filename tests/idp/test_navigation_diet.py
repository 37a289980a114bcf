"""SSO navigation on a diet (issue 18): the rule read fresh in one statement, the page
rendered ahead around the token's slot; what navigation refused before it still refuses."""

from __future__ import annotations

from typing import Any

import pytest

from rcd_store import services
from rcd_store.models import Declarant, DeclarantStatus
from tests import factories as f
from tests.idp.portal_support import csrf_of, hidden_fields, log_in, saml_partner, saml_response_of
from token_suite import Trust, saml
from token_suite.replay import InMemoryReplayCache

SP = "https://urssaf.example/sp"
ACS = "https://urssaf.example/acs"


@pytest.fixture(autouse=True)
def _keys(app: Any) -> None:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)


def _world(app: Any, session: Any) -> tuple[Any, Any]:
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    f.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL"})
    person = f.declarant(session)
    services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    saml_partner(session, "URSSAF", ["DSN"], entity_id=SP, acs=ACS)
    session.commit()
    client = app.test_client()
    log_in(app, client, person.id)
    return person, client


def _navigate(client: Any, code: str, query: str = "") -> Any:
    token = csrf_of(client.get("/tableau-de-bord").get_data(as_text=True))
    return client.post(f"/navigation/{code}{query}", data={"csrf_token": token})


@pytest.mark.parametrize("code", ["DSN", "INCONNU"])
def test_a_declarant_suspended_during_the_session_gets_no_token(
    app: Any, session: Any, code: str
) -> None:
    """Read at each navigation: the session lives on, the declarant no longer acts; known
    or unknown service alike, the answer is the login page (nothing told of the service)."""
    person, client = _world(app, session)
    token = csrf_of(client.get("/tableau-de-bord").get_data(as_text=True))
    declarant = session.get(Declarant, person.id)
    declarant.status = DeclarantStatus.LOCKED.value
    session.commit()
    answer = client.post(f"/navigation/{code}", data={"csrf_token": token})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/connexion?next=%2Ftableau-de-bord"
    assert "SAMLResponse" not in answer.get_data(as_text=True)


def test_each_page_posts_its_own_token_and_the_page_follows_the_language(
    app: Any, session: Any
) -> None:
    """The page rendered ahead holds a slot, never a token: two navigations post two
    different jetons, each verifying, and the English page is the English one."""
    _person, client = _world(app, session)
    trust = Trust.from_metadata(client.get("/saml/metadata").data)
    seen = set()
    for query, button in (("", "Continuer vers URSSAF"), ("?lang=en", "Continue to URSSAF")):
        for _ in range(2):
            html = _navigate(client, "DSN", query).get_data(as_text=True)
            assert f'<button type="submit">{button}</button>' in html
            assert [name for name, _value in hidden_fields(html)] == ["SAMLResponse"]
            document = saml_response_of(html)
            vector = saml.verify(document, trust=trust, audience=SP, replay=InMemoryReplayCache())
            assert vector.pagm == ("DSN_DECL",)
            seen.add(document)
    assert len(seen) == 4
