"""Who reaches the operator console, over every route read from the URL map (a new
route is covered without being listed here): anonymous visitors go to the login page;
a declarant who is not an operator gets 403; an operator without a second factor is
sent to enrol one; an operator whose session was opened without the code logs in again.
None of them changes anything. A form posted without its CSRF token is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.administration.pages_support import post, state
from tests.console.support import Console, log_in, routes, set_up, urls

#: what a POST carries: enough to change something if it were let through
FORM = {
    "nom": "Intrus",
    "url_arrivee": "https://intrus.example/",
    "format": "jwt",
    "duree": "60",
    "services": ["ATMP"],
    "recepteur": "https://intrus.example/evenements",
    "client_id": "intrus",
    "redirections": "https://intrus.example/retour",
    "origines": "https://intrus.example",
    "autorisations": ["authorization_code"],
    "authentification": "none",
}


@pytest.fixture
def c(app: Any, session: Any) -> Console:
    return set_up(app, session)


def _call(client: Any, method: str, url: str) -> Any:
    return client.get(url) if method == "GET" else post(client, url, FORM)


def test_the_console_has_the_expected_routes(app: Any) -> None:
    """The enumeration sees every route (guards the tests below from seeing none)."""
    endpoints = {endpoint for endpoint, _, _ in routes(app)}
    assert len(endpoints) >= 12
    assert {"console.home", "console.add_post", "console.client_delete_post"} <= endpoints


def test_anonymous_is_sent_to_login(app: Any, c: Console, db_snapshot: Any) -> None:
    client = app.test_client()
    before = state(db_snapshot)
    for method, url in urls(app, c):
        response = _call(client, method, url)
        assert response.status_code == 302, (method, url)
        assert response.headers["Location"].startswith("/connexion?next=%2Fconsole"), url
    assert state(db_snapshot) == before


def test_a_declarant_who_is_not_an_operator_gets_403(
    app: Any, c: Console, db_snapshot: Any
) -> None:
    client = log_in(app, c.plain)
    before = state(db_snapshot)
    for method, url in urls(app, c):
        response = _call(client, method, url)
        assert response.status_code == 403, (method, url)
        assert "Accès refusé" in response.get_data(as_text=True)
    assert state(db_snapshot) == before


def test_an_operator_without_second_factor_is_sent_to_enrol(
    app: Any, c: Console, db_snapshot: Any
) -> None:
    client = log_in(app, c.bare_operator, second_factor=False)
    before = state(db_snapshot)
    for method, url in urls(app, c):
        response = _call(client, method, url)
        assert response.status_code == 303, (method, url)
        assert response.headers["Location"] == "/compte/double-authentification", url
    assert state(db_snapshot) == before


def test_an_operator_logged_in_without_the_code_logs_in_again(
    app: Any, c: Console, db_snapshot: Any
) -> None:
    client = log_in(app, c.operator, second_factor=False)
    before = state(db_snapshot)
    for method, url in urls(app, c):
        response = _call(client, method, url)
        assert response.status_code == 302, (method, url)
        location = response.headers["Location"]
        assert location.startswith("/connexion?next=%2Fconsole") and "force=1" in location
    assert state(db_snapshot) == before


def test_a_revoked_operator_is_refused_at_the_next_request(
    app: Any, session: Any, c: Console
) -> None:
    from idp.console import operators
    from tests.console.support import OPERATOR_EMAIL

    client = log_in(app, c.operator)
    assert client.get("/console/").status_code == 200
    operators.revoke(session, OPERATOR_EMAIL, actor="cli")
    session.commit()
    assert client.get("/console/").status_code == 403


def test_the_operator_reads_every_page(app: Any, c: Console) -> None:
    client = log_in(app, c.operator)
    pages = [url for method, url in urls(app, c) if method == "GET"]
    assert len(pages) >= 6
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store"
        assert "<h1>" in response.get_data(as_text=True)


def test_post_without_csrf_token_refused(app: Any, c: Console, db_snapshot: Any) -> None:
    client = log_in(app, c.operator)
    before = state(db_snapshot)
    posts = [url for method, url in urls(app, c) if method == "POST"]
    assert len(posts) >= 6
    for url in posts:
        response = client.post(url, data=FORM)
        assert response.status_code == 400, url
        assert "anti-CSRF" in response.get_data(as_text=True)
    assert state(db_snapshot) == before


def test_only_operators_see_the_console_on_their_dashboard(app: Any, c: Console) -> None:
    link = 'href="/console/"'
    assert link in log_in(app, c.operator).get("/tableau-de-bord").get_data(as_text=True)
    assert link not in log_in(app, c.plain).get("/tableau-de-bord").get_data(as_text=True)
