"""The background refresher of ``idp serve`` (``IDP_SAML_METADATA_BACKGROUND``): what is
due is refreshed without anyone asking, and not fetched again before it is due; beside it,
``idp partner refresh-metadata --loop`` in another process never applies a document twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from idp.saml.metadata_refresh import refresher
from keys.model import SigningKey
from partners.metadata_refresh import REFRESHED
from partners.models import SamlServiceProvider
from partners.saml_metadata import FetchPolicy, fetch
from partners.services import PartnerSettings, add_partner
from rcd_store.db import utcnow
from rcd_store.models import AuditEvent
from tests.events.support import wait_for
from tests.idp.process_support import process_env
from tests.partners import metadata_support as md


@pytest.fixture
def server() -> Iterator[md.MetadataServer]:
    published = md.MetadataServer()
    yield published
    published.down()


@pytest.fixture
def background_app(app_config: dict[str, Any]) -> Iterator[Any]:
    from idp.factory import create_app
    from idp.stores.db import database

    made: list[Any] = []

    def make() -> Any:
        settings = {"SAML_METADATA_BACKGROUND": True, "SAML_METADATA_INTERVAL": 0.1}
        made.append(create_app(app_config | settings))
        return made[-1]

    yield make
    for app in made:
        running = refresher(app)
        if running is not None:
            running.stop()
        database(app).engine.dispose()
        redis_client = app.extensions.get("idp.redis")
        if redis_client is not None:
            redis_client.close()


def _published_and_due(session: Any, server: md.MetadataServer, *, due: bool = True) -> SigningKey:
    key = md.new_key()
    server.body = md.document(key)
    add_partner(
        session,
        PartnerSettings(
            name="Portail",
            saml_metadata=fetch(server.url, FetchPolicy()),
            saml_metadata_url=server.url,
        ),
    )
    if due:
        _make_due(session)
    session.commit()
    return key


def _make_due(session: Any) -> None:
    session.scalars(select(SamlServiceProvider)).one().metadata_next_fetch_at = utcnow()
    session.commit()


def _keys(session: Any) -> int:
    session.expire_all()
    return len(session.scalars(select(SamlServiceProvider)).one().certificates_pem)


def test_background_refresher_refreshes_what_is_due(background_app, session, server) -> None:
    key = _published_and_due(session, server)
    server.body = md.document(key, md.new_key())
    app = background_app()
    running = refresher(app)
    assert running is not None and running.thread.is_alive()
    assert wait_for(lambda: _keys(session) == 2, 10)
    time.sleep(0.5)  # several more ticks: nothing is due, nothing is fetched
    assert server.requests == 2  # the import, then one refresh
    running.stop()
    assert not running.thread.is_alive()


def test_background_refresher_is_off_unless_asked(app) -> None:
    assert refresher(app) is None


def test_cli_loop_beside_the_background_refresher_applies_once(
    background_app, app_config, session, server
) -> None:
    key = _published_and_due(session, server, due=False)
    server.body = md.document(key, md.new_key())
    server.delay = 0.3  # each fetch takes a while: both refreshers see the row due
    env = process_env(app_config, IDP_SAML_METADATA_INTERVAL="0.1")
    loop = subprocess.Popen(
        [str(Path(sys.executable).parent / "idp"), "partner", "refresh-metadata", "--loop",
         "--interval", "0.1", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert loop.stdout is not None
        assert json.loads(loop.stdout.readline()) == {"outcomes": []}  # its first round: none due
        background_app()
        _make_due(session)
        assert wait_for(lambda: _keys(session) == 2, 30)
        time.sleep(1.0)  # any second application would come now
    finally:
        loop.send_signal(signal.SIGTERM)
        out, err = loop.communicate(timeout=30)
    assert loop.returncode == 0, err
    rounds = [json.loads(line) for line in out.splitlines()]
    assert len(rounds) >= 1  # one JSON object per round, until SIGTERM
    assert server.requests == 2  # the import, then one fetch by one refresher
    session.expire_all()
    refreshed = session.scalars(select(AuditEvent).where(AuditEvent.kind == REFRESHED)).all()
    assert len(refreshed) == 1
