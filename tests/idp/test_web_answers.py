"""The one ``no_store`` and the one reader of the ``Authorization`` header (HTTP Basic as
RFC 6749 2.3.1 wants it, Bearer, DSNLogin)."""

from base64 import b64encode

import pytest
from werkzeug.wrappers import Response

from idp.web.answers import no_store
from idp.web.credentials import basic_credentials, presented


def _basic(text: bytes) -> str:
    return "Basic " + b64encode(text).decode()


def test_no_store_marks_the_answer_and_only_adds_what_is_asked() -> None:
    plain = no_store(Response("x"))
    assert plain.headers["Cache-Control"] == "no-store"
    assert "Pragma" not in plain.headers and "Content-Security-Policy" not in plain.headers
    token = no_store(Response("x"), pragma=True, frame_ancestors="'none'")
    assert token.headers["Pragma"] == "no-cache"
    assert token.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_basic_credentials_are_form_decoded_after_base64() -> None:
    assert basic_credentials(_basic(b"my+app%3A1:s%C3%A9cret+%2B")) == ("my app:1", "sécret +")
    assert basic_credentials("basic   " + b64encode(b"a:b").decode() + " ") == ("a", "b")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic   ",
        "Bearer abc",
        "Basic !!!",
        _basic(b"no-colon"),
        _basic(b"\xff:x"),
    ],
)
def test_malformed_basic_gives_nothing(header: str | None) -> None:
    assert basic_credentials(header) is None


def test_presented_reads_one_scheme_only() -> None:
    assert presented("Bearer  abc ", "bearer") == "abc"
    assert presented("DSNLogin jeton=x", "Bearer") is None
    assert presented("Bearer ", "Bearer") is None and presented(None, "Bearer") is None
