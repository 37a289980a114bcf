"""SAML metadata from a URL in the console: fetched now (then on the refresh schedule),
checked against the signing certificates the operator gives; a refused document, an
unreachable URL or an unreadable certificate is said beside its field and changes
nothing. The partner's server runs on this area's ports."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from partners.models import Partner
from rcd_store.models import AuditEvent
from tests.administration.pages_support import post, state
from tests.console.support import Console, log_in, set_up
from tests.partners import metadata_support
from tests.partners.metadata_support import MetadataServer, document, new_key, pem

ACS = "https://urssaf.example/acs"
ENTITY = "https://urssaf.example/sp"


@pytest.fixture
def c(app: Any, session: Any) -> Console:
    return set_up(app, session)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataServer]:
    monkeypatch.setattr(metadata_support, "PORTS", range(8300, 8400))  # this area's ports
    running = MetadataServer()
    yield running
    running.down()


def _error(response: Any, field: str) -> str:
    html = response.get_data(as_text=True)
    return html.split(f'id="{field}-erreur">', 1)[1].split("</span>", 1)[0]


def _saml(session: Any) -> Any:
    session.expire_all()
    return session.scalars(select(Partner).where(Partner.name == "URSSAF")).one().saml


def test_metadata_from_a_url(
    app: Any, session: Any, c: Console, server: MetadataServer, db_snapshot: Any
) -> None:
    operator = log_in(app, c.operator)
    url = f"/console/partenaires/{c.partner}/saml"
    signer, sp_key = new_key(), new_key()
    server.body = document(sp_key, entity=ENTITY, acs=ACS)  # not signed
    before = state(db_snapshot)
    form = {"url_metadonnees": server.url, "certificat": pem(signer).decode()}
    refused = post(operator, url, form)
    assert refused.status_code == 400
    assert "signature" in _error(refused, "url_metadonnees")
    bad_pem = post(operator, url, {**form, "certificat": "-----BEGIN CERTIFICATE-----\nxx"})
    assert "illisible" in _error(bad_pem, "certificat")
    server.down()
    unreachable = post(operator, url, form)
    assert "injoignables" in _error(unreachable, "url_metadonnees")
    assert state(db_snapshot) == before
    server.up()
    server.body = document(sp_key, entity=ENTITY, acs=ACS, signer=signer)
    done = post(operator, url, form)
    assert done.status_code == 303, done.get_data(as_text=True)
    saml = _saml(session)
    assert saml.entity_id == ENTITY and saml.metadata_url == server.url
    assert saml.metadata_next_fetch_at is not None
    assert len(saml.metadata_signing_pem) == 1
    (event,) = session.scalars(
        select(AuditEvent).where(
            AuditEvent.kind == "partner.edited", AuditEvent.actor == c.operator
        )
    ).all()
    assert json.loads(event.data)["address"] == "127.0.0.1"
    page = operator.get(url).get_data(as_text=True)
    assert server.url in page and "BEGIN CERTIFICATE" in page
    # a file and a URL at once: refused, nothing changed

    both = post(
        operator,
        url,
        {**form, "metadonnees": (io.BytesIO(server.body), "sp.xml")},
        content_type="multipart/form-data",
    )
    assert "pas les deux" in _error(both, "metadonnees")
