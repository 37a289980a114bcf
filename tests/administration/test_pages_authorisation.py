"""Authorisation over every administration route, by direct URL and by id (the routes
are read from the blueprint: a new route is covered without being listed here).

- anonymous: sent to the login page;
- a plain declarant (MEMBRE): 403 everywhere;
- the administrator of company B on company A's ids: 403 everywhere, nothing changed;
- the administrator of company A with company B's declarant or establishment in A's
  URLs: 404, nothing changed, nothing of B shown.
"""

from __future__ import annotations

from typing import Any

import pytest

from rcd_store import administration as adm
from tests import factories as f
from tests.administration.pages_support import client_of, post, routes, state, urls
from tests.administration.support import Directory, two_companies

#: what a POST carries: enough to change something if it were let through
FORM = {
    "nom": "Intrus",
    "prenom": "Ivan",
    "courriel": "ivan@intrus.example",
    "cellule": [f"{f.SIRET_A}|DSN|DECLARANT", f"{f.SIRET_B}|DSN|DECLARANT"],
    "accorde": [f"{f.SIRET_A}|DSN|DECLARANT", f"{f.SIRET_B}|DSN|DECLARANT"],
}


@pytest.fixture
def d(session: Any) -> Directory:
    return two_companies(session)


def _establishment(session: Any, company: int) -> int:
    return adm.list_establishments(session, company).items[0].id


def _every(
    app: Any, session: Any, d: Directory, company: int, declarant: str, place: int | None = None
) -> list[Any]:
    place = place or _establishment(session, d.company_a)
    return [
        (method, url)
        for _, method, rule in routes(app)
        for url in urls(rule, company=company, declarant=declarant, establishment=place)
    ]


def _call(client: Any, method: str, url: str, form: dict[str, Any]) -> Any:
    if method == "GET":
        chosen = form.get("declarant", "")
        return client.get(url + ("?declarant=" + chosen if "passation" in url else ""))
    return post(client, url, form)


def test_the_blueprint_has_the_expected_routes(app: Any) -> None:
    """The enumeration sees every route (guards the tests below from seeing none)."""
    endpoints = {endpoint for endpoint, _, _ in routes(app)}
    assert len(endpoints) == 13
    assert {"administration.member_post", "administration.habilitations_post"} <= endpoints


def test_anonymous_is_sent_to_login(app: Any, session: Any, d: Directory) -> None:
    client = client_of(app, None)
    for method, url in _every(app, session, d, d.company_a, d.member_a):
        response = _call(client, method, url, {**FORM, "declarant": d.member_a})
        assert response.status_code == 302, (method, url)
        assert response.headers["Location"].startswith("/connexion?next=%2Fadministration"), url


def test_a_plain_declarant_reaches_no_administration(
    app: Any, session: Any, d: Directory, db_snapshot: Any
) -> None:
    client = client_of(app, d.member_a)
    before = state(db_snapshot)
    for method, url in _every(app, session, d, d.company_a, d.admin_a):
        response = _call(client, method, url, {**FORM, "declarant": d.admin_a})
        assert response.status_code == 403, (method, url)
        assert "Accès refusé" in response.get_data(as_text=True)
    assert state(db_snapshot) == before
    assert "/administration/" not in client.get("/tableau-de-bord").get_data(as_text=True)


def test_another_company_s_administrator_reads_and_changes_nothing(
    app: Any, session: Any, d: Directory, db_snapshot: Any
) -> None:
    client = client_of(app, d.admin_b)
    before = state(db_snapshot)
    for method, url in _every(app, session, d, d.company_a, d.member_a):
        response = _call(client, method, url, {**FORM, "declarant": d.member_a})
        # the home names no company: B's administrator sees B's own, nothing of A
        expected = 200 if url == "/administration/" else 403
        assert response.status_code == expected, (method, url)
        assert "Boulangerie" not in response.get_data(as_text=True)
    for method, url in _every(app, session, d, 987_654, d.member_a):  # an unknown company
        if url != "/administration/":
            assert _call(client, method, url, FORM).status_code == 403, (method, url)
    assert state(db_snapshot) == before


def test_ids_of_another_company_in_one_s_own_urls_are_not_found(
    app: Any, session: Any, d: Directory, db_snapshot: Any
) -> None:
    client = client_of(app, d.admin_a)
    before = state(db_snapshot)
    place_b = _establishment(session, d.company_b)
    foreign = _every(app, session, d, d.company_a, d.member_b, place_b)
    checked = 0
    for method, url in foreign:
        if not (d.member_b in url or f"/etablissements/{place_b}" in url or "passation" in url):
            continue
        checked += 1
        response = _call(client, method, url, {**FORM, "declarant": d.member_b})
        assert response.status_code == 404, (method, url)
        assert "Martin" not in response.get_data(as_text=True)
    # the hand-over by id in the form
    response = post(
        client, f"/administration/entreprises/{d.company_a}/passation", {"declarant": d.member_b}
    )
    assert response.status_code == 404
    assert response.status_code == 404 and checked >= 8
    assert state(db_snapshot) == before


def test_the_administrator_reads_every_page(app: Any, session: Any, d: Directory) -> None:
    client = client_of(app, d.admin_a)
    for method, url in _every(app, session, d, d.company_a, d.member_a):
        if method == "GET":
            response = _call(client, method, url, {"declarant": d.member_a})
            assert response.status_code == 200, url
            html = response.get_data(as_text=True)
            assert "Transports Martin" not in html and "brice@b.example" not in html, url
            assert response.headers["Cache-Control"] == "no-store"
    dashboard = client.get("/tableau-de-bord").get_data(as_text=True)
    assert 'href="/administration/"' in dashboard


def test_post_without_csrf_token_refused(
    app: Any, session: Any, d: Directory, db_snapshot: Any
) -> None:
    client = client_of(app, d.admin_a)
    before = state(db_snapshot)
    for method, url in _every(app, session, d, d.company_a, d.member_a):
        if method == "POST":
            response = client.post(url, data={**FORM, "declarant": d.member_a})
            assert response.status_code == 400, url
            assert "anti-CSRF" in response.get_data(as_text=True)
    assert state(db_snapshot) == before
