"""A sender process killed (SIGKILL) in the middle of a send, then restarted: the
message arrives exactly once. Killed after the server accepted the message (before
our commit of « sent »): never sent again, recorded as uncertain once its claim is
stale. Killed before the point of no return (at RCPT): sent again, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import MASTER_KEY
from tests.outbox.smtp_support import SmtpServer, smtp_server
from tests.outbox.test_files import queue
from tests.outbox.test_smtp import record


def _idp() -> str:
    return str(Path(sys.executable).parent / "idp")


def _env(app_config: dict[str, Any], server: SmtpServer, **extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    settings = app_config | server.settings() | {"MASTER_KEY": MASTER_KEY} | extra
    settings.pop("REDIS_URL", None)
    env.update(
        {f"IDP_{k}": str(int(v) if v is True else v) for k, v in settings.items() if v is not None}
    )
    return env


def _send(env: dict[str, str]) -> dict[str, int]:
    """``idp outbox send --json`` to its end; its report."""
    import json

    done = subprocess.run(
        [_idp(), "outbox", "send", "--json"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, int] = json.loads(done.stdout)
    return report


class Killer:
    """Kills the sender process from inside the SMTP server, at a chosen stage."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.started = threading.Event()
        self.killed = threading.Event()

    def __call__(self) -> None:
        if self.killed.is_set():
            return
        self.started.wait(30)
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.killed.set()

    def run(self, env: dict[str, str]) -> int:
        self.process = subprocess.Popen(
            [_idp(), "outbox", "send"], env=env, stdout=subprocess.DEVNULL, text=True
        )
        self.started.set()
        return self.process.wait(60)


@contextmanager
def killed_at(
    stage: str, make_app: Any, app_config: dict[str, Any], session: Any, **extra: Any
) -> Iterator[tuple[SmtpServer, Any, int, dict[str, str]]]:
    """A message queued, and ``idp outbox send`` killed by the SMTP server when it
    reaches ``stage`` (``rcpt`` or ``data``); yields (server, app, message id, env)."""
    with smtp_server(Path(app_config["INSTANCE_PATH"]).parent) as server:
        app = make_app(**server.settings())
        row = queue(app, session)
        killer = Killer()
        setattr(server.inbox, f"on_{stage}", killer)
        env = _env(app_config, server, **extra)
        assert killer.run(env) == -signal.SIGKILL
        yield server, app, row.id, env


def test_killed_after_the_server_accepted_arrives_exactly_once(
    make_app: Any, app_config: dict[str, Any], session: Any
) -> None:
    # the message is kept by the server, then the sender dies before its 250 and commit
    with killed_at("data", make_app, app_config, session) as (server, app, row_id, env):
        assert len(server.inbox.received) == 1
        assert record(app, row_id).state == "handing"
        restarted = _send(env)  # the claim is fresh: the message is left alone
        assert restarted["sent"] == 0 and len(server.inbox.received) == 1
        stale = _send(_env(app_config, server, OUTBOX_LEASE_SECONDS=0.0))
        assert (stale["sent"], stale["uncertain"]) == (0, 1)
        assert len(server.inbox.received) == 1  # exactly once
        (got,) = server.inbox.received
        key = record(app, row_id).idempotency_key
        assert got.message["Message-ID"].startswith(f"<outbox.{key}@")
    closed = record(app, row_id)
    assert (closed.state, closed.body_sealed) == ("uncertain", None)
    assert "non renvoyé" in (closed.last_error or "")


def test_killed_before_the_point_of_no_return_is_sent_again_once(
    make_app: Any, app_config: dict[str, Any], session: Any
) -> None:
    lease = {"OUTBOX_LEASE_SECONDS": 0.0}
    with killed_at("rcpt", make_app, app_config, session, **lease) as (server, app, row_id, env):
        assert server.inbox.received == [] and record(app, row_id).state == "sending"
        again = _send(env)
        assert (again["recovered"], again["sent"]) == (1, 1)
        assert len(server.inbox.received) == 1
    sent = record(app, row_id)
    assert (sent.state, sent.body_sealed, sent.attempts) == ("sent", None, 2)
