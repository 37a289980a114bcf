"""``GET /api/openapi.json`` describes every endpoint, and schemathesis (through the
Flask app, WSGI) finds no server error and no answer outside the document, with a
valid administrator token and with none. Bounded examples; derandomised when ``CI``
is set; ``IDP_SCHEMATHESIS_EXAMPLES`` raises the bound for a longer run."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.support import admin_token, api_world, bearer

EXAMPLES = int(os.environ.get("IDP_SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def admin_headers(app: Any, session: Any) -> dict[str, str]:
    api = api_world(app, session)
    return bearer(admin_token(app, api, api.client_admin))


def _explore(app: Any, headers: dict[str, str] | None) -> list[int]:
    """Every operation of the document, positive then negative examples, each answer
    checked; returns the statuses seen."""
    seen: list[int] = []
    document = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    for result in document.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @SETTINGS
            def run(case: Any) -> None:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                seen.append(response.status_code)

            run()
    return seen


def test_the_document_names_every_api_route(app: Any) -> None:
    document = app.test_client().get("/api/openapi.json").json
    assert document["openapi"] == "3.1.0"
    routes = {
        str(rule.rule).replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if str(rule.rule).startswith("/api/v1")
    }
    assert routes == set(document["paths"])
    scopes = document["components"]["securitySchemes"]["oauth2"]["flows"]
    assert set(scopes["clientCredentials"]["scopes"]) == {"rcd.read", "rcd.admin"}


def test_with_an_admin_token(app: Any, admin_headers: dict[str, str]) -> None:
    seen = _explore(app, admin_headers)
    assert 200 in seen and 400 in seen  # the token opened the doors, the checks refused


def test_without_a_token(app: Any, session: Any) -> None:
    api_world(app, session)
    seen = _explore(app, None)
    assert set(seen) <= {400, 401, 413, 415} and 401 in seen
