"""The administration API: an administrator's tool with an ``rcd.admin`` access token,
under the pages' rules: company A's administrator reads and changes nothing of
company B by any id; a token without the scope gets 403; a mandataire acts only
within its mandate; bad input is a 400 problem that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories as f
from tests.api.support import ApiWorld, admin_token, api_world, bearer, machine_token

BASE = "/api/v1/entreprises"


@pytest.fixture
def api(app: Any, session: Any) -> ApiWorld:
    return api_world(app, session)


def _call(app: Any, token: str, method: str, path: str, **kwargs: Any) -> Any:
    return app.test_client().open(f"{BASE}{path}", method=method, headers=bearer(token), **kwargs)


def _grant(app: Any, token: str, company_id: int, **body: Any) -> Any:
    payload = {"firm_siren": f.SIRET_FIRM[:9], "kind": "cabinet", "services": ["DSN"], **body}
    return _call(app, token, "POST", f"/{company_id}/mandats", json=payload)


def test_an_administrator_sees_its_company_only(app: Any, api: ApiWorld) -> None:
    token = admin_token(app, api, api.client_admin)
    mine = _call(app, token, "GET", "")
    assert [c["id"] for c in mine.json["items"]] == [api.client_id]
    assert _call(app, token, "GET", f"/{api.client_id}/etablissements").json["total"] == 2
    people = _call(app, token, "GET", f"/{api.client_id}/declarants").json["items"]
    assert [p["id"] for p in people] == [api.client_admin]
    for path in (
        f"/{api.other_id}/etablissements",
        f"/{api.other_id}/declarants",
        f"/{api.firm_id}/mandats",
        "/999999/declarants",
    ):
        refused = _call(app, token, "GET", path)
        assert refused.status_code == 403, path
        assert refused.mimetype == "application/problem+json"
    assert _grant(app, token, api.other_id).status_code == 403


def test_a_token_without_the_admin_scope_gets_403(app: Any, api: ApiWorld) -> None:
    login_only = admin_token(app, api, api.client_admin, scope="openid")
    refused = _call(app, login_only, "GET", f"/{api.client_id}/declarants")
    assert refused.status_code == 403 and "rcd.admin" in refused.json["detail"]
    reader = machine_token(app, api, "urssaf-reader", "rcd.read")
    assert _call(app, reader, "GET", "").status_code == 403
    # a machine token with the scope names no administrator
    machine = machine_token(app, api, "outil-admin", "rcd.admin")
    assert _call(app, machine, "GET", "").json["items"] == []
    assert _call(app, machine, "GET", f"/{api.client_id}/declarants").status_code == 403
    assert app.test_client().get(f"{BASE}/{api.client_id}/declarants").status_code == 401


def test_mandate_granted_used_and_ended_through_the_api(app: Any, api: ApiWorld) -> None:
    client_token = admin_token(app, api, api.client_admin)
    firm_token = admin_token(app, api, api.firm_admin)
    granted = _grant(app, client_token, api.client_id, establishments=[f.SIRET_A])
    assert granted.status_code == 201, granted.json
    mandate = granted.json["id"]
    assert granted.json["live"] and granted.json["firm_siren"] == f.SIRET_FIRM[:9]
    received = _call(
        app, firm_token, "GET", f"/{api.firm_id}/mandats", query_string={"side": "firm"}
    )
    assert [m["id"] for m in received.json["items"]] == [mandate]
    path = f"/{api.firm_id}/mandats/{mandate}/habilitations"
    body = {"declarant_id": api.accountant, "siret": f.SIRET_A, "service": "DSN"}
    assert _call(app, firm_token, "POST", path, json=body).status_code == 201
    assert _call(app, firm_token, "POST", path, json=body).status_code == 200  # already held
    beyond = [{**body, "service": "ATMP"}, {**body, "siret": f.SIRET_A2}]
    for wanted in beyond:
        assert _call(app, firm_token, "POST", path, json=wanted).status_code == 403
    # the client's administrator cannot use the firm's side, nor company B's the mandate
    assert _call(app, client_token, "POST", path, json=body).status_code == 403
    other_token = admin_token(app, api, api.other_admin)
    end_by_other = _call(app, other_token, "POST", f"/{api.other_id}/mandats/{mandate}/fin")
    assert end_by_other.status_code == 404
    ended = _call(app, client_token, "POST", f"/{api.client_id}/mandats/{mandate}/fin")
    assert ended.status_code == 200 and ended.json == {"mandate_id": mandate, "revoked": 1}


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"firm_siren": "123", "services": ["DSN"]}}, 400),
        ({"json": {"firm_siren": f.SIRET_FIRM[:9], "services": "DSN"}}, 400),
        ({"json": {"firm_siren": f.SIRET_FIRM[:9], "services": ["DSN"], "extra": 1}}, 400),
        ({"json": {"firm_siren": f.SIRET_FIRM[:9], "services": ["DSN"], "ends_at": "demain"}}, 400),
        ({"json": {"firm_siren": f.SIRET_FIRM[:9], "services": ["DSN"], "kind": "x"}}, 400),
        ({"json": {"firm_siren": f.SIRET_FIRM[:9], "services": ["NOPE"]}}, 404),
        ({"json": ["not", "an", "object"]}, 400),
        ({"data": "firm_siren=1", "content_type": "application/x-www-form-urlencoded"}, 415),
        ({"data": b"{" * 2_000_000, "content_type": "application/json"}, 413),
    ],
)
def test_bad_bodies_change_nothing(
    app: Any, api: ApiWorld, db_snapshot: Any, kwargs: dict[str, Any], status: int
) -> None:
    token = admin_token(app, api, api.client_admin)
    before = db_snapshot()
    response = _call(app, token, "POST", f"/{api.client_id}/mandats", **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    after = db_snapshot()
    assert after["mandate"] == before["mandate"] == []


@pytest.mark.parametrize("path", ["/abc/declarants", "/0/declarants", f"/{2**40}/declarants"])
def test_bad_ids_are_400(app: Any, api: ApiWorld, path: str) -> None:
    token = admin_token(app, api, api.client_admin)
    response = _call(app, token, "GET", path)
    assert response.status_code == 400 and "company_id" in response.json["detail"]


def test_unknown_paths_and_methods_under_api_are_problems(app: Any, api: ApiWorld) -> None:
    missing = app.test_client().get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = app.test_client().put(f"{BASE}/1/mandats")  # refused before routing (CSRF)
    assert wrong.status_code in (400, 405) and wrong.mimetype == "application/problem+json"
    wrong = app.test_client().get(f"{BASE}/1/mandats/1/fin")
    assert wrong.status_code == 405 and "POST" in wrong.headers["Allow"]
    assert wrong.mimetype == "application/problem+json"
    assert app.test_client().get("/nothing").mimetype != "application/problem+json"


def test_members_suspended_reactivated_and_habilitated(
    app: Any, session: Any, api: ApiWorld
) -> None:
    member = f.declarant(
        session, siret=f.SIRET_A2, last="Petit", first="Marc", email="marc@dupont.example"
    )
    session.commit()
    token = admin_token(app, api, api.client_admin)
    other = admin_token(app, api, api.other_admin)
    person = f"/{api.client_id}/declarants/{member.id}"
    for who, path in ((other, person), (other, f"/{api.other_id}/declarants/{member.id}")):
        assert _call(app, who, "POST", f"{path}/suspension").status_code in (403, 404)
    suspended = _call(app, token, "POST", f"{person}/suspension")
    assert suspended.status_code == 200 and suspended.json["status"] == "disabled"
    again = _call(app, token, "POST", f"{person}/suspension")
    assert again.status_code == 400 and "actif" in again.json["detail"]
    assert _call(app, token, "POST", f"{person}/reactivation").json["status"] == "active"
    change = {"siret": f.SIRET_A2, "service": "DSN", "role": "DECLARANT", "granted": True}
    done = _call(app, token, "POST", f"{person}/habilitations", json={"changes": [change]})
    assert done.status_code == 200 and done.json["changed"] == 1
    assert (
        _call(app, other, "POST", f"{person}/habilitations", json={"changes": [change]}).status_code
        == 403
    )
    for bad in ({"changes": []}, {"changes": [{**change, "granted": "oui"}]}, {"x": 1}):
        refused = _call(app, token, "POST", f"{person}/habilitations", json=bad)
        assert refused.status_code == 400, bad


def test_rights_under_a_mandate_listed_and_revoked(app: Any, api: ApiWorld) -> None:
    client_token = admin_token(app, api, api.client_admin)
    firm_token = admin_token(app, api, api.firm_admin)
    mandate = _grant(app, client_token, api.client_id).json["id"]
    firm_side = f"/{api.firm_id}/mandats/{mandate}/habilitations"
    body = {"declarant_id": api.accountant, "siret": f.SIRET_A, "service": "DSN"}
    granted = _call(app, firm_token, "POST", firm_side, json=body).json["habilitation_id"]
    client_side = f"/{api.client_id}/mandats/{mandate}/habilitations"
    listed = _call(app, client_token, "GET", client_side, query_string={"side": "client"})
    assert [r["declarant_id"] for r in listed.json["items"]] == [api.accountant]
    other = admin_token(app, api, api.other_admin)
    assert (
        _call(app, other, "GET", f"/{api.other_id}/mandats/{mandate}/habilitations").status_code
        == 404
    )
    revoke = f"{client_side}/{granted}/revocation"
    assert _call(app, other, "POST", revoke).status_code == 403
    assert _call(app, client_token, "POST", revoke).json == {
        "habilitation_id": granted,
        "revoked": True,
    }
    assert _call(app, client_token, "POST", revoke).status_code == 404  # already revoked
    assert (
        _call(app, firm_token, "GET", firm_side, query_string={"side": "firm"}).json["total"] == 0
    )
