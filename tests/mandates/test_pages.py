"""The mandate pages: the client's administrator grants and ends a mandate, the
mandataire's administrator habilitates its declarant within it; others get 403/404;
bad input is shown in French and changes nothing; forms carry CSRF tokens."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from rcd_store import services
from rcd_store.models import Habilitation, Mandate
from tests import factories as f
from tests.idp.portal_support import csrf_of, log_in
from tests.mandates.support import World, world


@pytest.fixture
def w(app: Any, session: Any) -> World:
    found = world(session)
    session.commit()
    return found


def _browser(app: Any, declarant_id: str) -> Any:
    browser = app.test_client()
    log_in(app, browser, declarant_id)
    return browser


def _url(company_id: int, rest: str = "") -> str:
    return f"/administration/entreprises/{company_id}/mandats{rest}"


def _post(browser: Any, page_url: str, url: str, data: dict[str, Any]) -> Any:
    token = csrf_of(browser.get(page_url).get_data(as_text=True))
    return browser.post(url, data={"csrf_token": token, **data})


def _grant(app: Any, w: World, **fields: Any) -> Any:
    browser = _browser(app, w.client_admin.id)
    data = {"siren": f.SIRET_FIRM[:9], "nature": "cabinet", "services": ["DSN"], **fields}
    return _post(browser, _url(w.client_id), _url(w.client_id), data)


def test_grant_habilitate_and_end(app: Any, session: Any, w: World) -> None:
    page = _browser(app, w.client_admin.id).get(_url(w.client_id))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<h1>Mandats</h1>" in html
    assert '<label for="siren">SIREN du mandataire</label>' in html
    granted = _grant(app, w, etablissements=f.SIRET_A, fin="2099-12-31")
    assert granted.status_code == 303 and "fait=accorde" in granted.headers["Location"]
    mandate = session.scalars(select(Mandate)).one()
    assert mandate.establishments == [f.SIRET_A] and mandate.ends_at is not None
    firm = _browser(app, w.firm_admin.id)
    received = firm.get(_url(w.firm_id)).get_data(as_text=True)
    assert f"/mandats/{mandate.id}" in received
    page_url = _url(w.firm_id, f"/{mandate.id}")
    assert "Lefèvre Claire" in firm.get(page_url).get_data(as_text=True)
    form = {"declarant": w.accountant.id, "siret": f.SIRET_A, "service": "DSN", "role": "DECLARANT"}
    done = _post(firm, page_url, _url(w.firm_id, f"/{mandate.id}/habilitations"), form)
    assert done.status_code == 303
    assert len(services.active_habilitations(session, w.accountant.id)) == 1
    beyond = _post(
        firm,
        page_url,
        _url(w.firm_id, f"/{mandate.id}/habilitations"),
        {**form, "siret": f.SIRET_A2},
    )
    assert beyond.status_code == 403  # beyond the mandate's establishments
    assert "Opération refusée" in beyond.get_data(as_text=True)
    client = _browser(app, w.client_admin.id)
    ended = _post(
        client, _url(w.client_id), _url(w.client_id, f"/{mandate.id}/fin"), {"cote": "client"}
    )
    assert ended.status_code == 303
    session.expire_all()
    assert services.active_habilitations(session, w.accountant.id) == []
    assert session.scalars(select(Habilitation.revoked_at)).one() is not None


@pytest.mark.parametrize(
    "fields",
    [
        {"siren": "123"},
        {"services": []},
        {"nature": "banque"},
        {"etablissements": "12345678901234"},
        {"fin": "31/12/2099"},
        {"fin": "2000-01-01"},
        {"siren": "1" * 500},
    ],
)
def test_bad_input_is_shown_and_changes_nothing(
    app: Any, w: World, db_snapshot: Any, fields: dict[str, Any]
) -> None:
    before = db_snapshot()
    refused = _grant(app, w, **fields)
    assert refused.status_code == 400
    assert 'role="alert"' in refused.get_data(as_text=True)
    assert db_snapshot()["mandate"] == before["mandate"] == []


def test_others_reach_nothing(app: Any, session: Any, w: World) -> None:
    _grant(app, w)
    mandate = session.scalars(select(Mandate)).one()
    outsider = _browser(app, w.firm_admin.id)
    assert outsider.get(_url(w.client_id)).status_code == 403  # not the client's admin
    assert outsider.get(_url(w.firm_id, f"/{mandate.id}")).status_code == 200
    member = _browser(app, w.accountant.id)  # a declarant of the firm, no administrator
    assert member.get(_url(w.firm_id)).status_code == 403
    assert member.get(_url(w.firm_id, f"/{mandate.id}")).status_code == 403
    client = _browser(app, w.client_admin.id)
    assert client.get(_url(w.client_id, f"/{mandate.id}")).status_code == 404  # firm's side
    ended = _post(outsider, _url(w.firm_id), _url(w.firm_id, "/999/fin"), {"cote": "firm"})
    assert ended.status_code == 404
    anonymous = app.test_client().get(_url(w.client_id))
    assert anonymous.status_code in (302, 303) and "/connexion" in anonymous.headers["Location"]
    no_csrf = client.post(_url(w.client_id, f"/{mandate.id}/fin"), data={"cote": "client"})
    assert no_csrf.status_code == 400
    assert session.scalars(select(Mandate.ended_at)).one() is None


def test_the_company_page_links_to_its_mandates(app: Any, w: World) -> None:
    page = _browser(app, w.client_admin.id).get(f"/administration/entreprises/{w.client_id}")
    assert f'href="{_url(w.client_id)}"' in page.get_data(as_text=True)
