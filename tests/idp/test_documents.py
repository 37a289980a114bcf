"""JWKS, discovery and SAML metadata as prepared bytes (idp.web.documents): strong ETag,
Cache-Control, 304, and after the first build no database, no Redis and no cookie."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.idp.hot_path_support import store_calls

DOCUMENTS = ("/.well-known/jwks.json", "/.well-known/openid-configuration", "/saml/metadata")


@pytest.fixture
def keyed(app: Any) -> Any:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    return app


@pytest.mark.parametrize("path", DOCUMENTS)
def test_document_has_strong_etag_cache_control_and_answers_304(keyed: Any, path: str) -> None:
    client = keyed.test_client()
    first = client.get(path)
    assert first.status_code == 200 and first.data
    tag = first.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert first.headers["Content-Length"] == str(len(first.data))
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(path, headers={"If-None-Match": f'W/"other", {tag}'})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == tag and again.headers["Cache-Control"]
    other = client.get(path, headers={"If-None-Match": '"someone-else"'})
    assert other.status_code == 200 and other.data == first.data
    head = client.head(path)
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == tag


def test_documents_after_warm_up_touch_no_store_and_set_no_cookie(
    keyed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.stores import generations

    client = keyed.test_client()
    for path in DOCUMENTS:
        assert client.get(path).status_code == 200  # warm-up: built once
    # the one query a process makes, at most every half second whatever its load (the
    # generation poll, tested below), out of this window
    monkeypatch.setattr(generations, "POLL_SECONDS", 3600.0)
    with store_calls(keyed) as seen:
        for _ in range(3):
            for path in DOCUMENTS:
                response = keyed.test_client().get(path)
                assert response.status_code == 200
                assert "Set-Cookie" not in response.headers
    assert seen == []


def test_document_contents_are_those_of_the_keys_and_the_issuer(keyed: Any) -> None:
    from idp.tokens.signing import keyring
    from keys.model import KeyUse
    from token_suite import Trust

    client = keyed.test_client()
    jwks = json.loads(client.get("/.well-known/jwks.json").data)
    published = {key.kid for key in keyring(keyed).published(KeyUse.JWT)}
    assert {key["kid"] for key in jwks["keys"]} == published and len(published) == 2
    assert all("d" not in key for key in jwks["keys"])
    discovery = json.loads(client.get("/.well-known/openid-configuration").data)
    assert discovery["issuer"] == "http://idp.test"
    assert discovery["jwks_uri"] == "http://idp.test/.well-known/jwks.json"
    trust = Trust.from_metadata(client.get("/saml/metadata").data)
    assert trust.issuer == keyed.config["SAML_ENTITY_ID"]


@pytest.mark.parametrize(("use", "path"), [("jwt", DOCUMENTS[0]), ("saml", DOCUMENTS[2])])
def test_a_rotation_by_the_cli_is_published_within_a_second(
    keyed: Any, app_config: dict[str, Any], use: str, path: str
) -> None:
    from tests.idp.test_generations import _cli

    client = keyed.test_client()
    before = client.get(path)
    assert client.get(path, headers={"If-None-Match": before.headers["ETag"]}).status_code == 304
    rotated = _cli(app_config, "keys", "rotate", "--use", use)  # another process
    assert rotated.returncode == 0, rotated.stderr
    start = time.monotonic()
    while True:
        after = client.get(path, headers={"If-None-Match": before.headers["ETag"]})
        if after.status_code == 200:
            break
        assert time.monotonic() - start < 1.0, "the old document is still served"
        time.sleep(0.02)
    assert after.headers["ETag"] != before.headers["ETag"] and after.data != before.data
    if use == "jwt":
        assert len(json.loads(after.data)["keys"]) == 3


def test_without_keys_the_route_answers_503_and_a_query_goes_to_the_route(app: Any) -> None:
    client = app.test_client()
    missing = client.get("/.well-known/jwks.json")
    assert missing.status_code == 503 and "idp db upgrade" in missing.get_data(as_text=True)
    with_query = client.get("/.well-known/openid-configuration?x=1")
    assert with_query.status_code == 200 and "ETag" not in with_query.headers
    assert json.loads(with_query.data)["issuer"] == "http://idp.test"
