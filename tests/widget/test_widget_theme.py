"""``/widget/v1/config`` gives the client's partner's theme (issue 17: "themed per
partner"): the registered one, validated again on read, to the registered origins only."""

from __future__ import annotations

from typing import Any

import pytest

from partners.services import PartnerSettings, edit_partner, get_partner
from partners.theme import DEFAULT_THEME
from tests.widget.support import CLIENT_ID, widget_world

BASE = "https://idp.test"
PARTNER = "https://partner.example"
URL = f"/widget/v1/config?client_id={CLIENT_ID}&lang=fr"


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "BASE_URL": BASE}


@pytest.fixture
def client(app: Any) -> Any:
    agent = app.test_client()
    agent.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "idp.test"})
    return agent


@pytest.fixture
def world(app: Any, session: Any) -> Any:
    return widget_world(app, session, base_url=BASE, origins=(PARTNER,))


def test_the_partners_theme_is_in_its_settings(client: Any, world: Any, session: Any) -> None:
    theme = {
        "primary": "#1E5B2A",
        "logo_url": "https://cdn.partner.example/logo.svg",
        "label": {"fr": "Connexion URSSAF", "en": "URSSAF sign-in"},
    }
    edit_partner(session, "URSSAF", PartnerSettings(name="", theme=theme))
    session.commit()
    answer = client.get(URL, headers={"Origin": PARTNER})
    assert answer.status_code == 200
    assert answer.json["theme"] == {
        "name": "URSSAF",
        "primary": "#1e5b2a",
        "text": DEFAULT_THEME["text"],
        "logo_url": "https://cdn.partner.example/logo.svg",
        "label": {"fr": "Connexion URSSAF", "en": "URSSAF sign-in"},
    }
    refused = client.get(URL, headers={"Origin": "https://other.example"})
    assert refused.status_code == 403 and "theme" not in refused.json


def test_without_a_theme_the_default_look(client: Any, world: Any) -> None:
    answer = client.get(URL, headers={"Origin": PARTNER})
    assert answer.json["theme"] == {**DEFAULT_THEME, "name": "URSSAF"}


def test_a_stored_theme_that_fails_validation_is_never_served(
    client: Any, world: Any, session: Any
) -> None:
    partner = get_partner(session, "URSSAF")
    partner.theme = {  # written around the validator (a bad migration, a manual UPDATE)
        "primary": "#000;}</style><script>alert(1)</script>",
        "label": {"fr": "<img src=x onerror=alert(1)>"},
    }
    session.commit()
    answer = client.get(URL, headers={"Origin": PARTNER})
    assert answer.json["theme"] == {**DEFAULT_THEME, "name": "URSSAF"}
