"""Issue 13 item 11: one safe-redirect check for every user-given ``next`` / RelayState."""

from __future__ import annotations

from typing import Any

import pytest

from idp.web.redirects import is_local_path, local_target
from tests.idp.login_support import login_siret, setup_directory
from tests.idp.test_inbound import _jeton, _post, world

__all__ = ["world"]  # the inbound fixture, used below

HOSTILE = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/ /evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "//evil.example",
    "///evil.example",
    "https://evil.example/",
    "https:/evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    "evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/%252F/evil.example",
    "%2F%2Fevil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "/\u3000/evil.example",
    "/\uff0f/evil.example",
    "/..//evil.example",
    "/.//evil.example",
    "/x/..//evil.example",
    "/%2E%2E//evil.example",
    "/" + "a" * 3000,
]
LOCAL = [
    "/tableau-de-bord",
    "/x",
    "/compte/",
    "/a.b/c..d",
    "/oauth/authorize?a=b&c=%2F&d=%C3%A9t%C3%A9",
    "/saml/sso?e=1#f",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_are_refused(target: str) -> None:
    assert not is_local_path(target)
    assert local_target(target) == "/tableau-de-bord"


@pytest.mark.parametrize("target", LOCAL)
def test_local_paths_are_kept(target: str) -> None:
    assert is_local_path(target) and local_target(target) == target


def test_missing_target() -> None:
    assert local_target(None) == local_target("") == "/tableau-de-bord"
    assert local_target(None, "/ailleurs") == "/ailleurs"


@pytest.mark.parametrize("target", HOSTILE[:12])
def test_inbound_relay_state(app: Any, world: Any, target: str) -> None:
    declarant_id, key = world
    response = _post(app, _jeton(declarant_id, key), RelayState=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/tableau-de-bord", repr(target)


@pytest.mark.parametrize("target", HOSTILE[:12])
def test_login_next(app: Any, session: Any, target: str) -> None:
    setup_directory(session)
    browser = app.test_client()
    done = login_siret(browser, next=target)
    assert done.status_code == 303 and done.headers["Location"] == "/tableau-de-bord"
    again = browser.get("/connexion", query_string={"next": target})
    assert again.status_code == 302 and again.headers["Location"] == "/tableau-de-bord"
