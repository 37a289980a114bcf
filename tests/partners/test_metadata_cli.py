"""``idp partner add/edit --saml-metadata URL [--metadata-signing-cert FILE]``,
``idp partner refresh-metadata [NAME]``, ``idp partner show``, and the fetch's bounds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.partners import metadata_support as md


@pytest.fixture
def server() -> Iterator[md.MetadataServer]:
    published = md.MetadataServer()
    yield published
    published.down()


def _show(idp: Any) -> dict[str, Any]:
    shown = idp("partner", "show", "Portail", "--json")
    assert shown.code == 0, shown.err
    return dict(json.loads(shown.out)["saml"])


def test_add_from_url_show_and_refresh(idp, server, tmp_path) -> None:
    key, signer = md.new_key(), md.new_key()
    cert = tmp_path / "signer.pem"
    cert.write_bytes(md.pem(signer))
    server.body = md.document(key, signer=signer)
    added = idp(
        "partner", "add", "--name", "Portail", "--saml-metadata", server.url,
        "--metadata-signing-cert", str(cert), "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    saml = json.loads(added.out)["saml"]
    assert saml["metadata_url"] == server.url and saml["metadata_signed"] is True
    shown = _show(idp)
    assert shown["metadata_fetched_at"] and shown["metadata_next_fetch_at"]
    assert shown["metadata_error"] is None
    server.body = md.document(key)  # unsigned: refused, reported, shown
    refused = idp("partner", "refresh-metadata", "Portail")
    assert refused.code == 1 and "refused" in refused.err and "signature" in refused.err
    assert "signature" in _show(idp)["metadata_error"]
    server.body = md.document(key, md.new_key(), signer=signer)
    done = idp("partner", "refresh-metadata", "Portail", "--json")
    assert done.code == 0 and json.loads(done.out)["status"] == "refreshed"
    assert _show(idp)["metadata_error"] is None
    assert idp("partner", "refresh-metadata", "--json").out.strip() == '{"outcomes": []}'


def test_edit_from_a_file_stops_the_refresh(idp, server, tmp_path) -> None:
    key = md.new_key()
    server.body = md.document(key)
    assert idp("partner", "add", "--name", "Portail", "--saml-metadata", server.url).code == 0
    path = tmp_path / "sp.xml"
    path.write_bytes(md.document(key))
    assert idp("partner", "edit", "Portail", "--saml-metadata", str(path)).code == 0
    assert _show(idp)["metadata_url"] is None
    refused = idp("partner", "refresh-metadata", "Portail")
    assert refused.code == 1 and "pas de métadonnées SAML à une URL" in refused.err


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda s: setattr(s, "content_type", "text/html"), "type de contenu"),
        (lambda s: setattr(s, "redirect", "file:///etc/passwd"), "autre schéma"),
        (lambda s: setattr(s, "redirect", "https://127.0.0.1/x"), "autre schéma"),
        (lambda s: setattr(s, "status", 404), "HTTP 404"),
        (lambda s: setattr(s, "body", b"<x/>" + b" " * 5000), "trop volumineuses"),
        (lambda s: setattr(s, "delay", 2.0), "injoignables"),
        (lambda s: setattr(s, "missing", 100), "injoignables"),
    ],
    ids=["html", "redirect-file", "redirect-https", "404", "too-large", "timeout", "cut-short"],
)
def test_fetch_bounds(idp, server, db_snapshot, monkeypatch, setup, words) -> None:
    monkeypatch.setenv("IDP_SAML_METADATA_MAX_BYTES", "4000")
    monkeypatch.setenv("IDP_SAML_METADATA_TIMEOUT", "0.5")
    server.body = md.document(md.new_key())
    setup(server)
    before = db_snapshot()
    result = idp("partner", "add", "--name", "Portail", "--saml-metadata", server.url)
    assert result.code == 1 and words in result.err, result.err
    assert db_snapshot() == before


def test_plain_http_only_to_loopback_unless_allowed() -> None:
    from partners.saml_metadata import metadata_url
    from rcd_store.errors import DirectoryError

    with pytest.raises(DirectoryError, match="URL https absolue attendue"):
        metadata_url("http://sp.example/metadata")
    for bad in ("ftp://sp.example/m", "https://user:pw@sp.example/m", "https://sp.example/m#x"):
        with pytest.raises(DirectoryError):
            metadata_url(bad, allow_http=True)
    assert metadata_url("http://sp.example/m", allow_http=True) == "http://sp.example/m"
    assert metadata_url("http://127.0.0.1:8400/m") == "http://127.0.0.1:8400/m"
    assert metadata_url(" https://sp.example/m ") == "https://sp.example/m"
