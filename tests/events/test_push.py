"""Security Event Tokens pushed to partners (RFC 8417, RFC 8935): from a directory change
to a partner's real HTTP receiver, verified there by ``token_suite.events``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from idp.events.models import SecurityEventRow
from idp.events.push import push_round
from rcd_store import services
from tests import factories
from tests.events.support import Receiver, our_trust, two_partners, wait_for
from token_suite import events

#: how long the receiver stays down in the slow test (the issue asks for a minute)
DOWN_SECONDS = float(os.environ.get("IDP_TEST_EVENTS_DOWN_SECONDS", "60"))


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """The background pusher on, quick: rounds every 0.2 s, retries from 0.2 s to 2 s."""
    return {
        **app_config,
        "EVENTS_BACKGROUND": True,
        "EVENTS_INTERVAL": 0.2,
        "EVENTS_RETRY_SECONDS": 0.2,
        "EVENTS_RETRY_MAX_SECONDS": 2.0,
        "EVENTS_TIMEOUT": 2.0,
    }


@pytest.fixture
def app(app: Any) -> Iterator[Any]:
    """The app, its pusher stopped afterwards (else it would push the next test's events
    from the same PostgreSQL database with this app's keys)."""
    from idp.events.background import pusher

    yield app
    running = pusher(app)
    assert running is not None
    running.stop()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    urssaf, other = Receiver(), Receiver()
    yield urssaf, other
    urssaf.down()
    other.down()


def _events(app: Any, receiver: Receiver, audience: str) -> list[events.SecurityEvent]:
    trust = our_trust(app)
    return [events.verify(t, trust=trust, audience=audience) for t in receiver.tokens()]


def _outcomes(session: Any, subject: str | None = None) -> list[tuple[str | None, str | None]]:
    """(outcome, recorded error) of the events, about ``subject`` when given, in order."""
    session.rollback()  # a fresh snapshot of what the pusher wrote
    query = select(SecurityEventRow.outcome, SecurityEventRow.last_error).order_by(
        SecurityEventRow.receiver, SecurityEventRow.seq
    )
    if subject is not None:
        query = query.where(SecurityEventRow.subject == subject)
    return [(outcome, error) for outcome, error in session.execute(query)]


def _stand(app: Any, session: Any) -> str:
    """Where the background pusher stands: its rounds, alive or not, the events' state."""
    from idp.events.background import pusher

    running = pusher(app)
    assert running is not None
    session.rollback()
    rows = session.execute(
        select(SecurityEventRow.receiver, SecurityEventRow.attempts, SecurityEventRow.outcome)
    ).all()
    return f"rounds={running.rounds} alive={running.thread.is_alive()} events={rows}"


def _revoke(session: Any, declarant_id: str, code: str = "DSN") -> None:
    services.revoke_habilitation(
        session, declarant_id=declarant_id, siret=factories.SIRET_A, service_code=code
    )
    session.commit()


def test_a_revoked_habilitation_reaches_the_partner_as_a_verified_set(
    app: Any, session: Any, receivers: tuple[Receiver, Receiver]
) -> None:
    urssaf, other = receivers
    world = two_partners(app, session, urssaf, other)
    started = time.monotonic()
    _revoke(session, world["elodie"])
    assert wait_for(lambda: len(urssaf.tokens()) == 2, 10), urssaf.received
    assert time.monotonic() - started < 10
    got = _events(app, urssaf, world["URSSAF"])
    assert [(e.kind, e.subject) for e in got] == [
        ("habilitation-granted", world["elodie"]),
        ("habilitation-revoked", world["elodie"]),
    ]
    assert got[1].payload == {"service": "DSN", "siret": factories.SIRET_A, "role": "DECLARANT"}
    assert {t for _, t, _ in urssaf.received} == {"application/secevent+jwt"}
    # the other partner (DUCS) heard of Marc only, never of Élodie
    assert wait_for(lambda: len(other.tokens()) == 1, 5)
    assert [(e.kind, e.subject) for e in _events(app, other, world["AUTRE"])] == [
        ("habilitation-granted", world["marc"])
    ]
    assert wait_for(lambda: _outcomes(session) == [("acknowledged", None)] * 3, 5)


def test_a_partner_sharing_no_service_hears_nothing_of_a_suspension(
    app: Any, session: Any, receivers: tuple[Receiver, Receiver]
) -> None:
    from rcd_store.administration import members

    urssaf, other = receivers
    world = two_partners(app, session, urssaf, other)
    admin = factories.declarant(
        session, last="Chef", first="Anne", email="anne@dupont.example", admin=True
    )
    company_id = services.establishment_by_siret(session, factories.SIRET_A).company_id
    members.suspend_declarant(
        session, company_id=company_id, declarant_id=world["marc"], actor=admin.id
    )
    session.commit()
    assert wait_for(lambda: len(other.tokens()) == 2, 10)
    kinds = [(e.kind, e.subject) for e in _events(app, other, world["AUTRE"])]
    assert kinds[-1] == ("account-suspended", world["marc"])
    time.sleep(0.6)  # three more rounds: nothing about Marc reaches URSSAF
    assert [e.subject for e in _events(app, urssaf, world["URSSAF"])] == [world["elodie"]]


def test_a_refused_set_is_recorded_and_the_next_one_goes(
    app: Any, session: Any, receivers: tuple[Receiver, Receiver]
) -> None:
    urssaf, other = receivers
    urssaf.status, urssaf.answer = 400, b'{"err":"invalid_request","description":"non"}'
    world = two_partners(app, session, urssaf, other)
    # 30 s: once, in a parallel CI run on PostgreSQL, nothing had come within 10 s (timing
    # "within seconds" is the first test's); the message says where the pusher stood
    assert wait_for(lambda: len(urssaf.tokens()) >= 1, 30), _stand(app, session)
    assert len(urssaf.tokens()) == 1, urssaf.received  # refused: recorded, never sent again
    urssaf.status = 202
    _revoke(session, world["elodie"])
    expected = [("refused", "invalid_request: non"), ("acknowledged", None)]
    assert wait_for(lambda: _outcomes(session, world["elodie"]) == expected, 10)


@pytest.mark.slow
def test_a_receiver_down_for_a_minute_gets_every_event_in_order_once(
    app: Any, session: Any, receivers: tuple[Receiver, Receiver]
) -> None:
    urssaf, other = receivers
    world = two_partners(app, session, urssaf, other)
    assert wait_for(lambda: len(urssaf.tokens()) == 1, 10)
    urssaf.down()
    for _ in range(3):  # revoked, granted again, revoked...: six events in all
        _revoke(session, world["elodie"])
        services.grant_habilitation(
            session, declarant_id=world["elodie"], siret=factories.SIRET_A, service_code="DSN"
        )
        session.commit()
    time.sleep(DOWN_SECONDS)
    urssaf.up()
    assert wait_for(lambda: len(urssaf.tokens()) == 7, 15), len(urssaf.tokens())
    time.sleep(1)  # a few more rounds: nothing is sent twice
    got = _events(app, urssaf, world["URSSAF"])
    assert len({e.jti for e in got}) == len(got) == 7
    assert [e.kind for e in got] == ["habilitation-granted"] + [
        "habilitation-revoked",
        "habilitation-granted",
    ] * 3
    session.expire_all()
    tried = session.scalars(
        select(SecurityEventRow.attempts).where(SecurityEventRow.receiver.like("set:%"))
    ).all()
    assert max(tried) > 1  # pushes failed while the receiver was down, then were retried


def test_a_round_without_receiver_sends_nothing_and_keeps_the_events(
    app: Any, session: Any
) -> None:
    """A partner without push receiver (pull only): its events stay, unsettled."""
    from tests.events.support import partner

    factories.company(session)
    factories.service(session, "DSN", partner="URSSAF")
    partner(session, "URSSAF", "DSN", None)
    elodie = factories.declarant(session)
    services.grant_habilitation(
        session, declarant_id=elodie.id, siret=factories.SIRET_A, service_code="DSN"
    )
    session.commit()
    assert push_round(app).acknowledged == 0
    row = session.scalars(select(SecurityEventRow)).one()
    assert (row.kind, row.subject, row.settled_at) == ("habilitation-granted", elodie.id, None)
