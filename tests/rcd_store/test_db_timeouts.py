"""Issue 13 item 8 at the engine: every PostgreSQL call is bounded, whether the server is
slow (statement_timeout), down (refused) or silent (packets dropped by the network, where
only the client's own deadline helps), and the engine recovers by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from rcd_store.db import Timeouts, make_engine
from tests.conftest import PG_URL
from tests.flows.tcp_proxy import TcpProxy, proxy_to

pytestmark = pytest.mark.postgres

BOUNDS = Timeouts(connect=2, statement=1, pool=2)  # client deadline: 2 s


@pytest.fixture
def proxied() -> Iterator[tuple[TcpProxy, Engine]]:
    if not PG_URL:
        pytest.skip("IDP_TEST_DATABASE_URL not set")
    url = make_url(PG_URL)
    with proxy_to(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port)
        engine = make_engine(through.render_as_string(hide_password=False), BOUNDS)
        yield proxy, engine
        engine.dispose()


def _select_one(engine: Engine) -> Any:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar()


def _fails_within(seconds: float, call: Any) -> OperationalError:
    started = time.monotonic()
    with pytest.raises(OperationalError) as failure:
        call()
    assert time.monotonic() - started < seconds
    return failure.value


def test_slow_statement_is_cancelled_by_the_server(proxied) -> None:
    _proxy, engine = proxied
    with engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "1s"
        error = _fails_within(1.8, lambda: connection.execute(text("SELECT pg_sleep(5)")))
        assert "statement timeout" in str(error)
        connection.rollback()
        assert connection.execute(text("SELECT 2")).scalar() == 2  # still usable


def test_silent_server_on_an_open_connection_ends_by_the_deadline(proxied) -> None:
    proxy, engine = proxied
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
        proxy.set_mode("drop")
        error = _fails_within(2.8, lambda: connection.execute(text("SELECT 1")))
        assert error.connection_invalidated
    proxy.set_mode("pass")
    assert _select_one(engine) == 1  # recovered, no restart


def test_silent_server_at_checkout_costs_one_deadline_only(proxied) -> None:
    """The pool's ping hits the deadline: the checkout fails then, without a second
    wait for a reconnection through the same silent network."""
    proxy, engine = proxied
    assert _select_one(engine) == 1  # one idle pooled connection
    proxy.set_mode("drop")
    _fails_within(2.8, lambda: _select_one(engine))
    _fails_within(2.8, lambda: _select_one(engine))  # a new connection: connect_timeout
    proxy.set_mode("pass")
    assert _select_one(engine) == 1


def test_refused_server_fails_at_once_and_recovers(proxied) -> None:
    proxy, engine = proxied
    assert _select_one(engine) == 1
    proxy.set_mode("refuse")
    _fails_within(1, lambda: _select_one(engine))
    _fails_within(1, lambda: _select_one(engine))
    proxy.set_mode("pass")
    assert _select_one(engine) == 1
