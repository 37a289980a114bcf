"""Issue 13 item 4 in-process: every request body bounded before it is read (forms, the
token endpoint, the machine login), 413 in French, JSON for APIs and a page otherwise."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from idp.config import ConfigError, load
from idp.factory import create_app

LIMIT = 4096


class CountingStream(io.RawIOBase):
    """An endless body that counts what the app pulled from it (a chunked upload)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.size - self.pulled)
        buffer[:count] = b"a" * count
        self.pulled += count
        return count


@pytest.fixture
def small(app_config: dict[str, Any]) -> Any:
    """An app whose body limit is ``LIMIT`` bytes."""
    from idp.stores.db import database

    flask_app = create_app({**app_config, "MAX_BODY_BYTES": LIMIT})
    flask_app.config["TESTING"] = True
    yield flask_app
    database(flask_app).engine.dispose()
    if flask_app.extensions.get("idp.redis") is not None:
        flask_app.extensions["idp.redis"].close()


@dataclass
class Answer:
    status_code: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def _chunked(app: Any, path: str, size: int, **headers: str) -> tuple[Answer, CountingStream]:
    """POST a ``size``-byte body with no Content-Length, as gunicorn hands a chunked one."""
    stream = CountingStream(size)
    environ = EnvironBuilder(
        path=path,
        method="POST",
        content_type=headers.pop("content_type", "application/x-www-form-urlencoded"),
        headers={"Transfer-Encoding": "chunked", **headers},
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": io.BufferedReader(stream), "wsgi.input_terminated": True})
    body, status, _headers = run_wsgi_app(app, environ, buffered=True)
    return Answer(int(status.split()[0]), b"".join(body).decode()), stream


def test_default_limit_is_one_mebibyte_and_configurable() -> None:
    assert load(None, environ={})["MAX_BODY_BYTES"] == 1024 * 1024
    assert load(None, environ={"IDP_MAX_BODY_BYTES": "2048"})["MAX_BODY_BYTES"] == 2048
    with pytest.raises(ConfigError):
        load(None, environ={"IDP_MAX_BODY_BYTES": "beaucoup"})


@pytest.mark.parametrize("path", ["/connexion", "/mot-de-passe/oubli", "/confiance/entrante"])
def test_form_endpoint_refuses_a_declared_oversize_body_with_a_french_page(
    small: Any, path: str
) -> None:
    response = small.test_client().post(
        path, data={"siret": "x" * (2 * LIMIT)}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 413
    assert "Requête trop volumineuse" in response.text
    assert "Les données envoyées sont trop volumineuses." in response.text


@pytest.mark.parametrize("path", ["/connexion", "/oauth/token", "/saml/sso"])
def test_chunked_body_is_read_no_further_than_the_limit(small: Any, path: str) -> None:
    response, stream = _chunked(small, path, 100 * LIMIT)
    assert response.status_code == 413
    assert stream.pulled <= LIMIT + 64 * 1024  # at most one read step past the limit


def test_token_endpoint_answers_413_in_french_json(small: Any) -> None:
    declared = small.test_client().post("/oauth/token", data={"grant_type": "x" * 2 * LIMIT})
    chunked, _ = _chunked(small, "/oauth/token", 10 * LIMIT)
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json["error"] == "request_entity_too_large"
        assert "trop volumineuses" in response.json["error_description"]


def test_body_within_the_limit_still_reaches_the_view(small: Any) -> None:
    response = small.test_client().post("/oauth/token", data={"grant_type": "inconnu"})
    assert response.status_code == 400 and response.json["error"] == "unsupported_grant_type"


def test_machine_login_keeps_its_64_kb_limit_on_a_chunked_body(app: Any) -> None:
    from idp.machine.login import MAX_BODY

    response, stream = _chunked(
        app, "/authentifier/1.0/", 10 * MAX_BODY, content_type="application/xml"
    )
    assert response.status_code == 413
    assert response.json["error"] == "requete" and "64 Ko" in response.json["error_description"]
    assert stream.pulled <= MAX_BODY + 64 * 1024


def test_machine_login_beyond_the_global_limit_is_refused_as_json(app: Any) -> None:
    response = app.test_client().post(
        "/authentifier/1.0/", data=b"<a/>" * (300 * 1024), content_type="application/xml"
    )
    assert response.status_code == 413 and "volumineuses" in response.json["error_description"]
