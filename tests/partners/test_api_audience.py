"""A partner's API audience names an API only: never a partner identifier nor a client
id, never another partner's API (token confusion, issue 13 item 5)."""

from __future__ import annotations

from typing import Any

import pytest

from partners.services import ClientSettings, PartnerSettings, add_partner, edit_partner
from rcd_store.errors import DirectoryError, Duplicate

from .sp_metadata import sp_metadata


def _portal(session: Any, **options: Any) -> Any:
    settings = PartnerSettings(name="Portail URSSAF", saml_metadata=sp_metadata()[0], **options)
    return add_partner(session, settings).partner


def _app(session: Any, name: str, client_id: str, **options: Any) -> Any:
    client = ClientSettings(
        client_id=client_id,
        token_auth="client_secret_basic",
        redirect_uris=["https://app.example/cb"],
    )
    return add_partner(session, PartnerSettings(name=name, client=client, **options)).partner


def test_an_api_audience_is_free_and_kept(session: Any) -> None:
    partner = _app(session, "Editeur Paie", "paie", api_audience="https://api.paie.example")
    assert partner.api_audience == "https://api.paie.example"


@pytest.mark.parametrize(
    "audience",
    ["https://sp.example/metadata", "paie", "cnav-app"],
    ids=["a partner identifier", "its own client id", "another client id"],
)
def test_an_identifier_or_client_id_is_refused_as_api_audience(session: Any, audience: str) -> None:
    _portal(session)
    _app(session, "CNAV", "cnav-app")
    with pytest.raises(DirectoryError, match="audience d'API invalide"):
        _app(session, "Editeur Paie", "paie", api_audience=audience)


def test_an_edit_cannot_take_an_identifier_or_another_api(session: Any) -> None:
    _portal(session)
    _app(session, "CNAV", "cnav-app", api_audience="https://api.cnav.example")
    _app(session, "Editeur Paie", "paie")
    with pytest.raises(DirectoryError, match="audience d'API invalide"):
        edit_partner(
            session,
            "Editeur Paie",
            PartnerSettings(name="", api_audience="https://sp.example/metadata"),
        )
    with pytest.raises(Duplicate, match="déjà utilisée par CNAV"):
        edit_partner(
            session,
            "Editeur Paie",
            PartnerSettings(name="", api_audience="https://api.cnav.example"),
        )
