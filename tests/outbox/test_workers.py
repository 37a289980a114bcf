"""Concurrent senders never both send one message: two worker threads on one database,
and ``idp outbox send --loop`` beside the background sender of the app (what ``idp serve``
runs), both speaking to one SMTP server. The background sender starts only when asked
and stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select

from idp.outbox.delivery import background
from idp.stores.db import database
from idp.stores.sealing import app_sealer
from rcd_store import outbox
from rcd_store.models import Outbox
from tests.outbox.smtp_support import smtp_server
from tests.outbox.test_crash import _env, _idp
from tests.outbox.test_files import queue


class SlowRecorder:
    """Takes its time with each message, so that two workers overlap."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.lock = threading.Lock()

    def send(self, message: outbox.Message, handover: Any) -> None:
        handover()
        time.sleep(0.05)
        with self.lock:
            self.sent.append(message.id)


def test_two_workers_never_send_one_message_twice(app: Any, session: Any) -> None:
    ids = [queue(app, session, subject=f"Message {n}").id for n in range(8)]
    sender = SlowRecorder()
    start = threading.Barrier(2)

    def work(name: str) -> outbox.Delivery:
        worker_session = database(app).sessions()
        try:
            start.wait()
            return outbox.deliver(worker_session, app_sealer(app), sender, worker=name)
        finally:
            worker_session.close()

    with ThreadPoolExecutor(2) as pool:
        rounds = [f.result(60) for f in [pool.submit(work, f"worker-{n}") for n in range(2)]]
    assert sum(done.sent for done in rounds) == len(ids)
    assert sorted(sender.sent) == ids  # each once, none twice
    session.expire_all()
    assert set(session.scalars(select(Outbox.state))) == {"sent"}


def test_cli_loop_beside_the_background_sender_sends_each_once(
    make_app: Any, app_config: dict[str, Any], tmp_path: Path, session: Any
) -> None:
    with smtp_server(tmp_path) as server:
        settings = server.settings() | {"OUTBOX_INTERVAL": 0.1}
        app = make_app(**settings, OUTBOX_BACKGROUND=True)
        loop = subprocess.Popen(
            [_idp(), "outbox", "send", "--loop", "--interval", "0.1"],
            env=_env(app_config, server, OUTBOX_INTERVAL=0.1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert loop.stdout is not None
            assert "boîte d'envoi" in loop.stdout.readline()  # its first round is done
            keys = {queue(app, session, subject=f"Message {n}").idempotency_key for n in range(10)}
            deadline = time.monotonic() + 60
            while len(server.inbox.received) < 10 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)  # any late duplicate would arrive now
        finally:
            loop.send_signal(signal.SIGTERM)
            out, err = loop.communicate(timeout=30)
            sender = background(app)
            assert sender is not None
            sender.stop()
        assert loop.returncode == 0, err
        assert "boîte d'envoi" in out  # one line per round, until SIGTERM
        assert not sender.thread.is_alive()
        ids = Counter(r.message["Message-ID"] for r in server.inbox.received)
        assert len(ids) == 10 and set(ids.values()) == {1}
        assert {i.removeprefix("<outbox.").split("@")[0] for i in ids} == keys


def test_background_sender_is_off_unless_asked(app: Any) -> None:
    assert background(app) is None


def test_background_sender_delivers_and_stops(make_app: Any, session: Any) -> None:
    background_on = {"OUTBOX_BACKGROUND": True, "OUTBOX_INTERVAL": 0.1, "OUTBOX_SENDER": "file"}
    app = make_app(**background_on)
    sender = background(app)
    assert sender is not None and sender.thread.is_alive()
    row = queue(app, session)
    path = Path(app.config["INSTANCE_PATH"]) / "outbox" / f"{row.id}-test.eml"
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    sender.stop()
    assert path.exists() and not sender.thread.is_alive()
