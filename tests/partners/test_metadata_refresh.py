"""SAML metadata refreshed from the partner's URL: a real HTTP server in the test serves
the documents; each refusal keeps the old metadata, is recorded, audited and logged."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from idp.saml.metadata_refresh import refresh_now, refresh_round
from idp.stores.models import CacheGeneration
from partners.metadata_refresh import FAILED, REFRESHED
from partners.models import SamlServiceProvider
from partners.saml_metadata import FetchPolicy, fetch
from partners.services import PartnerSettings, add_partner
from rcd_store.db import utcnow
from rcd_store.models import AuditEvent
from tests.partners import metadata_support as md

NAME = "Portail DSN"


@pytest.fixture
def server() -> Iterator[md.MetadataServer]:
    published = md.MetadataServer()
    yield published
    published.down()


def _register(
    session: Any,
    server: md.MetadataServer,
    *,
    signing: list[str] | None = None,
    services: tuple[str, ...] = (),
) -> Any:
    registered = add_partner(
        session,
        PartnerSettings(
            name=NAME,
            saml_metadata=fetch(server.url, FetchPolicy()),
            saml_metadata_url=server.url,
            metadata_signing_pem=signing,
            services=services,
        ),
    )
    session.commit()
    return registered.partner


def _sp(app: Any) -> SamlServiceProvider:
    from idp.stores.db import database

    with database(app).sessions() as fresh:
        return fresh.scalars(select(SamlServiceProvider)).one()


def _audited(app: Any, kind: str) -> list[dict[str, Any]]:
    from idp.stores.db import database

    with database(app).sessions() as fresh:
        rows = fresh.scalars(select(AuditEvent).where(AuditEvent.kind == kind)).all()
        return [json.loads(r.data) for r in rows]


def _refused_and_kept(app: Any, before: SamlServiceProvider, words: str) -> None:
    """The refresh was refused: old metadata in place, the error recorded and audited."""
    outcome = refresh_now(app, NAME)
    assert outcome.status == "refused" and words in (outcome.detail or ""), outcome
    after = _sp(app)
    assert after.metadata_xml == before.metadata_xml
    assert after.certificates_pem == before.certificates_pem and after.acs == before.acs
    assert after.metadata_error is not None and words in after.metadata_error
    assert after.metadata_next_fetch_at is not None and after.metadata_next_fetch_at > utcnow()
    assert any(words in e["error"] for e in _audited(app, FAILED))


def test_import_from_url_records_the_url_and_schedule(app, session, server) -> None:
    key = md.new_key()
    server.body = md.document(key)
    partner = _register(session, server)
    sp = partner.saml
    assert sp.metadata_url == server.url and sp.entity_id == md.ENTITY
    assert sp.metadata_fetched_at is not None and sp.metadata_error is None
    delay = sp.metadata_next_fetch_at - sp.metadata_fetched_at
    assert delay == timedelta(hours=6)
    assert sp.certificates_pem == [md.pem(key).decode()]


def test_rollover_is_picked_up_and_the_new_key_signs_requests(app, session, server) -> None:
    from idp.tokens.signing import ensure_keys
    from rcd_store.services import grant_habilitation
    from tests import factories
    from tests.idp.sso_saml_support import authn_request, log_in, posted_form, sign_xml

    ensure_keys(app)
    factories.company(session)
    factories.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL"})
    person = factories.declarant(session)
    grant_habilitation(session, declarant_id=person.id, siret=factories.SIRET_A, service_code="DSN")
    old, new = md.new_key(), md.new_key()
    server.body = md.document(old)
    _register(session, server, services=("DSN",))
    client = app.test_client()
    log_in(app, client, person.id)

    def post(key: Any) -> Any:
        signed = sign_xml(authn_request(), key)
        return client.post("/saml/sso", data={"SAMLRequest": base64.b64encode(signed).decode()})

    assert "SAMLResponse" not in post(new).get_data(as_text=True)  # not yet published
    generation = _partners_generation(app)
    server.body = md.document(old, new)  # the rollover: both published
    assert refresh_now(app, NAME).status == "refreshed"
    assert _partners_generation(app) > generation  # every worker drops its cache
    assert posted_form(post(new).get_data(as_text=True)).action == md.ACS
    server.body = md.document(new)  # then the old key withdrawn: one key kept, accepted
    assert refresh_now(app, NAME).status == "refreshed"
    assert "SAMLResponse" not in post(old).get_data(as_text=True)
    assert posted_form(post(new).get_data(as_text=True)).action == md.ACS
    events = _audited(app, REFRESHED)
    assert len(events) == 2 and events[0]["keys_added"] and events[1]["keys_removed"]


def _partners_generation(app: Any) -> int:
    from idp.stores.db import database

    with database(app).sessions() as fresh:
        found = fresh.scalar(
            select(CacheGeneration.value).where(CacheGeneration.name == "partners")
        )
        return int(found or 0)


def test_signed_metadata_is_required_once_a_signing_cert_is_set(app, session, server) -> None:
    partner_key, signer, stranger = md.new_key(), md.new_key(), md.new_key()
    server.body = md.document(partner_key, signer=signer)
    _register(session, server, signing=[md.pem(signer).decode()])
    before = _sp(app)
    assert before.metadata_signing_pem
    server.body = md.document(partner_key)  # unsigned
    _refused_and_kept(app, before, "signature")
    server.body = md.document(partner_key, signer=stranger)  # the wrong key
    _refused_and_kept(app, before, "signature")
    good = md.document(partner_key, signer=signer)
    server.body = good.replace(md.ACS.encode(), b"https://attacker.example/acs")  # tampered
    _refused_and_kept(app, before, "signature")
    # wrapping: a second element with the signed ID, the signed one moved aside
    wrapped = good.replace(
        b"</md:EntityDescriptor>",
        b'<md:Extensions><md:EntityDescriptor ID="_md1" entityID="x"/></md:Extensions>'
        b"</md:EntityDescriptor>",
    )
    server.body = wrapped
    _refused_and_kept(app, before, "refus")
    rolled = md.new_key()
    server.body = md.document(partner_key, rolled, signer=signer)
    assert refresh_now(app, NAME).status == "refreshed"
    after = _sp(app)
    assert len(after.certificates_pem) == 2 and after.metadata_error is None


def test_a_signing_cert_refuses_an_unsigned_first_import(app, session, server) -> None:
    from rcd_store.errors import DirectoryError

    signer = md.new_key()
    server.body = md.document(md.new_key())
    with pytest.raises(DirectoryError, match="signature"):
        _register(session, server, signing=[md.pem(signer).decode()])


def test_dropping_every_key_or_acs_is_refused_and_reported(app, session, server, caplog) -> None:
    key = md.new_key()
    server.body = md.document(key, encryption=md.new_key())
    _register(session, server)
    before = _sp(app)
    caplog.set_level(logging.WARNING, logger="partners.metadata_refresh")
    server.body = md.document(md.new_key())  # every current key replaced
    _refused_and_kept(app, before, "retire toutes les clés")
    assert any("retire toutes les clés" in r.getMessage() for r in caplog.records)
    server.body = md.document(signed_requests=False)  # no key at all
    _refused_and_kept(app, before, "retire toutes les clés")
    server.body = md.document(key, acs="https://sp.example/other-acs")
    _refused_and_kept(app, before, "AssertionConsumerService")
    assert _sp(app).metadata_failures == 3
    server.body = md.document(key)  # keeps the signing key: accepted, error cleared
    assert refresh_now(app, NAME).status == "refreshed"
    assert _sp(app).metadata_error is None and _sp(app).metadata_failures == 0


def test_an_entity_id_change_is_refused(app, session, server) -> None:
    key = md.new_key()
    server.body = md.document(key)
    _register(session, server)
    before = _sp(app)
    server.body = md.document(key, entity="https://elsewhere.example/metadata")
    _refused_and_kept(app, before, "entityID")


def test_expired_metadata_is_refused_and_cache_duration_shortens(app, session, server) -> None:
    key = md.new_key()
    server.body = md.document(key, attributes=' cacheDuration="PT1H"')
    _register(session, server)
    sp = _sp(app)
    assert sp.metadata_next_fetch_at - sp.metadata_fetched_at == timedelta(hours=1)
    server.body = md.document(key, attributes=' validUntil="2001-01-01T00:00:00Z"')
    _refused_and_kept(app, sp, "périmées")


def test_server_down_records_the_error_and_backs_off(app, session, server) -> None:
    key = md.new_key()
    server.body = md.document(key)
    _register(session, server)
    before = _sp(app)
    server.down()
    first = refresh_now(app, NAME)
    assert first.status == "failed" and "injoignables" in (first.detail or "")
    after = _sp(app)
    assert after.metadata_xml == before.metadata_xml and after.certificates_pem
    assert after.metadata_error is not None and after.metadata_failures == 1
    delay = after.metadata_next_fetch_at - utcnow()
    assert timedelta(seconds=290) < delay <= timedelta(seconds=300)
    assert refresh_now(app, NAME).status == "failed"
    delay = _sp(app).metadata_next_fetch_at - utcnow()
    assert timedelta(seconds=590) < delay <= timedelta(seconds=600)  # doubled
    assert refresh_round(app) == []  # not due yet: nothing fetched
    server.up()
    assert refresh_now(app, NAME).status == "refreshed"
    assert (
        _sp(app).metadata_error is None and _sp(app).metadata_fetched_at > after.metadata_fetched_at
    )
    assert _sp(app).metadata_failures == 0


def test_two_refreshers_do_not_both_apply(app, session, server) -> None:
    from idp.stores.db import database

    key = md.new_key()
    server.body = md.document(key)
    _register(session, server)
    with database(app).sessions() as fresh:
        fresh.scalars(select(SamlServiceProvider)).one().metadata_next_fetch_at = utcnow()
        fresh.commit()
    server.body = md.document(key, md.new_key())
    server.delay = 0.5  # both refreshers are in the race while the first one fetches
    requests_before = server.requests
    start = threading.Barrier(2)
    results: list[Any] = []

    def run() -> None:
        start.wait()
        results.extend(refresh_round(app))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(o.status for o in results)
    assert statuses.count("refreshed") == 1 and "failed" not in statuses, statuses
    assert server.requests - requests_before == 1
    assert len(_audited(app, REFRESHED)) == 1
