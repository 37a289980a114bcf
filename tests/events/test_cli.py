"""``idp partner ... --set-receiver``, ``--backchannel-logout-uri``, ``idp events push``
and ``idp events status``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from rcd_store import services
from tests import factories
from tests.events.support import Receiver, our_trust
from token_suite import events


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.down()


def test_a_receiver_registered_by_the_cli_gets_its_events_pushed_by_the_cli(
    app: Any, session: Any, idp: Any, receiver: Receiver
) -> None:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    factories.company(session)
    factories.service(session, "DSN", partner="URSSAF")
    session.commit()
    added = idp("partner", "add", "--name", "URSSAF", "--service", "DSN", "--set-receiver", "x")
    assert added.code != 0 and "récepteur" in added.err  # not an URL: refused
    assert idp("partner", "add", "--name", "URSSAF", "--service", "DSN").code == 0
    assert idp("partner", "edit", "URSSAF", "--set-receiver", receiver.url).code == 0
    shown = json.loads(idp("partner", "show", "URSSAF", "--json").out)
    assert shown["event_receiver_url"] == receiver.url
    elodie = factories.declarant(session)
    services.grant_habilitation(
        session, declarant_id=elodie.id, siret=factories.SIRET_A, service_code="DSN"
    )
    session.commit()
    status = json.loads(idp("events", "status", "--json").out)
    assert list(status.values()) == [{"pending": 1}]
    pushed = json.loads(idp("events", "push", "--json").out)
    assert pushed["acknowledged"] == 1
    (token,) = receiver.tokens()
    got = events.verify(token, trust=our_trust(app), audience=shown["identifier"])
    assert (got.kind, got.subject) == ("habilitation-granted", elodie.id)
    assert list(json.loads(idp("events", "status", "--json").out).values()) == [{"acknowledged": 1}]
    assert idp("partner", "edit", "URSSAF", "--set-receiver", "").code == 0
    assert json.loads(idp("partner", "show", "URSSAF", "--json").out)["event_receiver_url"] is None


def test_a_client_registers_its_backchannel_logout_uri(idp: Any) -> None:
    args = ["--client-id", "rp-1", "--redirect-uri", "https://rp.example/cb"]
    added = idp("partner", "add", "--name", "RP", *args, "--backchannel-logout-uri", "ftp://x")
    assert added.code != 0 and "backchannel_logout_uri" in added.err
    uri = "https://rp.example/logout"
    assert idp("partner", "add", "--name", "RP", *args, "--backchannel-logout-uri", uri).code == 0
    (client,) = json.loads(idp("partner", "show", "RP", "--json").out)["clients"]
    assert client["backchannel_logout_uri"] == uri
