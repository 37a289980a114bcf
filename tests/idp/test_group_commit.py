"""One durable write per token (issue 18): a client_credentials token's record and its
audit event are committed by the process's group commit, shared by concurrent requests,
before the token leaves; a failed or interrupted commit lets no token out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from idp.stores import group_commit
from idp.stores.models import IssuedToken
from rcd_store import audit
from rcd_store.models import AuditEvent
from tests.flows.server_support import ROOT, free_port
from tests.idp.oauth_support import basic, setup_world
from tests.idp.process_support import process_env


@pytest.fixture
def hook() -> Iterator[None]:
    yield
    group_commit.before_commit = None


def _token(app: Any, client_id: str, secret: str) -> Any:
    return app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )


def _held_leader(app: Any, world: Any) -> tuple[list[Any], threading.Thread, threading.Event]:
    """A token request whose commit is held (until the event is set): its answers, its
    thread, the event; returns once it is committing."""
    leading, release = threading.Event(), threading.Event()

    def hang(_session: Any) -> None:
        leading.set()
        release.wait(10)

    group_commit.before_commit = hang
    first: list[Any] = []
    leader = threading.Thread(
        target=lambda: first.append(_token(app, world.client_id, world.secret or ""))
    )
    leader.start()
    assert leading.wait(10)
    group_commit.before_commit = None
    return first, leader, release


ISSUED = select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "token.issued")


def _issued(session: Any) -> tuple[int, int]:
    """Machine tokens' rows (none: their trace is their record) and traces."""
    session.rollback()  # a fresh snapshot
    tokens = session.scalar(select(func.count()).select_from(IssuedToken))
    return int(tokens), int(session.scalar(ISSUED))


def test_concurrent_tokens_share_one_commit_and_the_trail_verifies(
    app: Any, session: Any, hook: None
) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))
    assert _token(app, world.client_id, world.secret or "").status_code == 200  # warm
    writer = group_commit.group_commit(app)
    writer.wait = 30  # the first commit is held on purpose
    commits: list[int] = []

    def hold_the_first(writing: Any) -> None:
        """Hold the first commit until every request is in it or queued behind it."""
        commits.append(1)
        deadline = time.monotonic() + 10
        while len(commits) == 1 and time.monotonic() < deadline:
            in_batch = writing.scalar(ISSUED) - 1
            if in_batch + len(writer._pending) >= 20:
                break
            time.sleep(0.01)

    group_commit.before_commit = hold_the_first
    answers: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(_token(app, world.client_id, world.secret or ""))
        )
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 20, answers[0].get_data(as_text=True)
    assert len(commits) == 2  # the first batch, then all the others together
    assert _issued(session) == (0, 21)
    assert audit.verify(session) == []


def test_a_failed_commit_lets_no_token_out(app: Any, session: Any, hook: None) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))
    before = _issued(session)

    def fail(_session: Any) -> None:
        raise OperationalError("COMMIT", {}, Exception("disque plein"))

    group_commit.before_commit = fail
    refused = _token(app, world.client_id, world.secret or "")
    assert refused.status_code == 503 and "access_token" not in refused.get_data(as_text=True)
    assert _issued(session) == before
    group_commit.before_commit = None
    assert _token(app, world.client_id, world.secret or "").status_code == 200
    assert _issued(session) == (0, before[1] + 1)
    assert audit.verify(session) == []


def test_a_request_whose_commit_does_not_come_in_time_is_a_503(
    app: Any, session: Any, hook: None
) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))
    group_commit.group_commit(app).wait = 0.2
    first, leader, release = _held_leader(app, world)
    try:
        refused = _token(app, world.client_id, world.secret or "")  # queued behind it
    finally:
        release.set()
        leader.join()
    assert refused.status_code == 503 and "access_token" not in refused.get_data(as_text=True)
    assert first[0].status_code == 200


def test_a_worker_killed_before_its_commit_lets_no_token_out(
    app: Any, session: Any, app_config: dict[str, Any], tmp_path: Path
) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))
    before = _issued(session)
    port, marker = free_port(), tmp_path / "barrier"
    env = process_env(app_config, GROUP_COMMIT_BARRIER=str(marker))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers=1", f"--bind=127.0.0.1:{port}"]
        + ["--threads=4", "tests.idp.barrier_app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    answers: list[Any] = []

    def ask() -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/oauth/token",
            data=b"grant_type=client_credentials",
            headers=basic(world.client_id, world.secret or ""),
        )
        for _ in range(300):
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers.append(response.read())
                return
            except urllib.error.HTTPError as error:
                answers.append(error.read())
                return
            except (urllib.error.URLError, ConnectionError) as error:
                if marker.exists():  # the worker died under our request
                    answers.append(repr(error))
                    return
                time.sleep(0.1)  # not listening yet

    try:
        asking = threading.Thread(target=ask)
        asking.start()
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the writer never reached its commit"
        time.sleep(0.1)
        os.kill(int(marker.read_text()), signal.SIGKILL)  # between signing and commit
        asking.join(60)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert answers and "access_token" not in str(answers[0])
    assert _issued(session) == before  # nothing of it was committed
    assert audit.verify(session) == []


def test_a_request_that_gave_up_waiting_leaves_the_queue_working(
    app: Any, session: Any, hook: None
) -> None:
    """A request that timed out in the queue is taken out of it: the commit in progress
    hands over to the next request as usual, and nothing waits on the one that left."""
    world = setup_world(app, session, extra_grants=("client_credentials",))
    writer = group_commit.group_commit(app)
    writer.wait = 0.2
    first, leader, release = _held_leader(app, world)
    try:
        assert _token(app, world.client_id, world.secret or "").status_code == 503
        assert writer._pending == []  # it left the queue
        writer.wait = 30
        later: list[Any] = []
        queued = threading.Thread(
            target=lambda: later.append(_token(app, world.client_id, world.secret or ""))
        )
        queued.start()
        deadline = time.monotonic() + 10
        while not writer._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(writer._pending) == 1  # queued behind the held commit
    finally:
        release.set()
        leader.join()
    queued.join(30)
    assert first[0].status_code == 200 and later[0].status_code == 200
    assert writer._pending == [] and not writer._leading
    assert _token(app, world.client_id, world.secret or "").status_code == 200
    assert audit.verify(session) == []


def test_once_its_segment_is_warm_a_commit_opens_no_session(
    app: Any, session: Any, hook: None
) -> None:
    """The first commit of the process's segment reads or opens it in a session; the
    next ones go on a plain Core connection, and the trail still verifies."""
    world = setup_world(app, session, extra_grants=("client_credentials",))
    assert _token(app, world.client_id, world.secret or "").status_code == 200
    writer = group_commit.group_commit(app)
    seen: list[Any] = []
    group_commit.before_commit = seen.append

    def no_session() -> Any:
        raise AssertionError("a session was opened for a warm segment")

    sessions, writer.sessions = writer.sessions, no_session  # type: ignore[assignment]
    try:
        for _ in range(3):
            assert _token(app, world.client_id, world.secret or "").status_code == 200
    finally:
        writer.sessions = sessions
    assert len(seen) == 3 and all(isinstance(c, Connection) for c in seen)
    assert _issued(session) == (0, 4)
    assert audit.verify(session) == []


def test_commits_in_a_row_keep_their_connection_and_an_idle_one_goes_back(
    app: Any, session: Any, hook: None, monkeypatch: Any
) -> None:
    """Back-to-back commits run on one connection (no pool checkout, no pre-ping round
    trip); after :data:`KEEP` idle seconds, or a failed commit, the next leader takes
    one from the pool."""
    world = setup_world(app, session, extra_grants=("client_credentials",))
    assert _token(app, world.client_id, world.secret or "").status_code == 200  # warm
    seen: list[Any] = []
    group_commit.before_commit = seen.append
    for _ in range(3):
        assert _token(app, world.client_id, world.secret or "").status_code == 200
    assert len(seen) == 3 and seen[0] is seen[1] is seen[2]
    monkeypatch.setattr(group_commit, "KEEP", 0.0)  # idle for longer than it keeps
    assert _token(app, world.client_id, world.secret or "").status_code == 200
    assert seen[3] is not seen[2] and seen[2].closed
    monkeypatch.setattr(group_commit, "KEEP", 60.0)

    def fail(connection: Any) -> None:
        seen.append(connection)
        raise OperationalError("COMMIT", {}, Exception("connexion perdue"))

    group_commit.before_commit = fail
    assert _token(app, world.client_id, world.secret or "").status_code == 503
    group_commit.before_commit = seen.append
    assert _token(app, world.client_id, world.secret or "").status_code == 200
    assert seen[-1] is not seen[-2] and seen[-2].closed  # the failed one was let go
    assert audit.verify(session) == []


def test_the_leaders_of_two_processes_take_turns_on_sqlite(
    app: Any, session: Any, hook: None
) -> None:
    """On SQLite the commits of the worker processes take turns through a lock file
    (the leader waits in the kernel, not in SQLite's sleeping busy handler); another
    database has none. A second writer on the same database stands for a second process
    (``flock`` excludes two descriptors of one process as it does two processes)."""
    writer = group_commit.group_commit(app)
    if writer.engine.dialect.name != "sqlite":
        assert writer.lock_file is None
        return
    assert writer.lock_file == f"{writer.engine.url.database}.commit-lock"
    other = group_commit.GroupCommit(writer.sessions, wait=30)
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def hold_the_first(_connection: Any) -> None:
        order.append(threading.current_thread().name)
        if threading.current_thread().name == "first":
            holding.set()
            release.wait(10)

    group_commit.before_commit = hold_the_first
    first = threading.Thread(
        target=writer.write, args=([("test.first", None, None, {})],), name="first"
    )
    second = threading.Thread(
        target=other.write, args=([("test.second", None, None, {})],), name="second"
    )
    statements: list[str] = []

    def seen(*_args: Any) -> None:
        statements.append(threading.current_thread().name)

    sa_event.listen(writer.engine, "before_cursor_execute", seen)
    try:
        first.start()
        assert holding.wait(10)
        second.start()
        time.sleep(0.3)
        # the other process's leader waits for its turn before any statement (without the
        # lock file, its INSERT would be sleeping in SQLite's busy handler by now)
        assert order == ["first"] and "second" not in statements
        release.set()
        first.join(10)
        second.join(10)
    finally:
        sa_event.remove(writer.engine, "before_cursor_execute", seen)
    assert order == ["first", "second"] and "second" in statements
    assert audit.verify(session) == []
