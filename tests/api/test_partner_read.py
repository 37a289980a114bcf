"""The partners' read API: a partner's client (client credentials, ``rcd.read``) sees
the establishments, declarants and habilitations of the services it shares, and
nothing of the others, by list or by id."""

from __future__ import annotations

from typing import Any

import pytest

from rcd_store.mandates import pilots
from tests import factories as f
from tests.api.support import ApiWorld, api_world, bearer, machine_token


@pytest.fixture
def api(app: Any, session: Any) -> ApiWorld:
    return api_world(app, session)


def _get(app: Any, token: str, path: str, **query: Any) -> Any:
    return app.test_client().get(f"/api/v1/rcd/{path}", headers=bearer(token), query_string=query)


def test_each_partner_sees_only_its_shared_services(app: Any, api: ApiWorld) -> None:
    urssaf = machine_token(app, api, "urssaf-reader", "rcd.read")
    cnav = machine_token(app, api, "cnav-reader", "rcd.read")
    rights = _get(app, urssaf, "habilitations").json
    assert [(r["declarant_id"], r["siret"], r["service"]) for r in rights["items"]] == [
        (api.client_admin, f.SIRET_A, "DSN")
    ]
    assert rights["total"] == 1
    assert [d["id"] for d in _get(app, urssaf, "declarants").json["items"]] == [api.client_admin]
    assert [e["siret"] for e in _get(app, urssaf, "etablissements").json["items"]] == [f.SIRET_A]
    assert [d["id"] for d in _get(app, cnav, "declarants").json["items"]] == [api.other_admin]
    # by id: the other partner's declarant is unknown, its own is there
    assert _get(app, urssaf, f"declarants/{api.other_admin}").status_code == 404
    assert _get(app, urssaf, f"declarants/{api.accountant}").status_code == 404
    found = _get(app, urssaf, f"declarants/{api.client_admin}")
    assert found.status_code == 200 and found.json["id"] == api.client_admin
    assert "email" not in found.json
    # filters stay inside the shared services
    assert _get(app, urssaf, "habilitations", service="DUCS").json["items"] == []
    assert _get(app, urssaf, "habilitations", siret=f.SIRET_B).json["items"] == []


def test_rights_not_in_force_are_not_shown(app: Any, session: Any, api: ApiWorld) -> None:
    f.company(session, siret="40483304800022", name="Tierce")
    pilots.open_to(session, code="DSN", siren="404833048", actor="t")
    session.commit()
    urssaf = machine_token(app, api, "urssaf-reader", "rcd.read")
    assert _get(app, urssaf, "habilitations").json["total"] == 0


def test_a_token_without_the_scope_or_for_admin_is_refused(app: Any, api: ApiWorld) -> None:
    no_token = app.test_client().get("/api/v1/rcd/declarants")
    assert no_token.status_code == 401 and no_token.mimetype == "application/problem+json"
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer")
    forged = _get(app, "abc.def.ghi", "declarants")
    assert forged.status_code == 401
    tool = machine_token(app, api, "outil-admin", "rcd.admin")
    refused = _get(app, tool, "declarants")
    assert refused.status_code == 403
    assert "rcd.read" in refused.json["detail"]
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "query",
    [
        {"page": "0"},
        {"page": "x"},
        {"per_page": "201"},
        {"per_page": "-1"},
        {"service": "dsn lower"},
        {"siret": "12345678901234"},
        {"siret": "1" * 500},
        {"page": "9" * 30},
    ],
)
def test_bad_parameters_are_400_with_a_french_message(
    app: Any, api: ApiWorld, query: dict[str, str]
) -> None:
    token = machine_token(app, api, "urssaf-reader", "rcd.read")
    response = _get(app, token, "habilitations", **query)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 400 and "invalide" in response.json["detail"]


def test_pages_are_bounded(app: Any, api: ApiWorld) -> None:
    token = machine_token(app, api, "urssaf-reader", "rcd.read")
    page = _get(app, token, "habilitations", per_page="200", page="2").json
    assert page == {"items": [], "page": 2, "per_page": 200, "total": 1}
