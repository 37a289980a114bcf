"""Shared fixtures: a migrated database per test (SQLite, or PostgreSQL when
``IDP_TEST_DATABASE_URL`` is set), an app, and an in-process ``idp`` runner."""

from __future__ import annotations

import base64
import io
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

import idp.stores.models
from idp import migrate  # registers every table of the service (idp.migrate.METADATA)
from rcd_store import audit
from rcd_store.db import Base, make_engine
from tests.store_selection import select_store_tests


def _own_stores_per_worker() -> None:
    """Under pytest-xdist, each worker gets its own PostgreSQL database (``<name>_gwN``,
    created when missing) and its own Redis database number (``base + N``, modulo 16), set
    back into the environment before any test module reads it: workers never truncate or
    flush each other's stores, so the PostgreSQL+Redis run can go in parallel too."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    number = int(worker[2:])
    pg_url = os.environ.get("IDP_TEST_DATABASE_URL")
    if pg_url:
        from sqlalchemy.engine import make_url

        base = make_url(pg_url)
        own = base.set(database=f"{base.database}_{worker}")
        admin = make_engine(base.render_as_string(hide_password=False))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database}
            ).first()
            if found is None:
                conn.execute(text(f'CREATE DATABASE "{own.database}"'))
        admin.dispose()
        os.environ["IDP_TEST_DATABASE_URL"] = own.render_as_string(hide_password=False)
    redis_url = os.environ.get("IDP_TEST_REDIS_URL")
    if redis_url:
        parts = urlsplit(redis_url)
        db = int(parts.path.strip("/") or 0)
        own_path = f"/{(db + number) % 16}"
        os.environ["IDP_TEST_REDIS_URL"] = urlunsplit(parts._replace(path=own_path))


_own_stores_per_worker()
PG_URL = os.environ.get("IDP_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL")
MASTER_KEY = base64.urlsafe_b64encode(b"k" * 32).rstrip(b"=").decode()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``IDP_TEST_STORE_ONLY=1`` on PostgreSQL (``.ci/run``), only the tests that can
    reach a store run (tests/store_selection.py); the SQLite run is the whole suite."""
    select_store_tests(config, items)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    if not PG_URL:
        pytest.skip("IDP_TEST_DATABASE_URL not set")
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated, empty database for this test."""
    audit.new_writer_segment()
    if PG_URL:
        _truncate(request.getfixturevalue("pg_engine"))
        return PG_URL
    target = tmp_path / "idp.sqlite3"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def redis_url() -> str | None:
    """``IDP_TEST_REDIS_URL``, emptied for this test; ``None`` when not set.

    With it, every app of the test suite keeps its SSO sessions, replay cache and rate
    limits in Redis, as in production (the runs with Redis are serial: one database).
    """
    if not REDIS_URL:
        return None
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return REDIS_URL


@pytest.fixture
def app_config(database_url: str, tmp_path: Path, redis_url: str | None) -> dict[str, Any]:
    config = {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "MASTER_KEY": MASTER_KEY,
        "SECRET_KEY": "test-secret-key",
        "BASE_URL": "http://idp.test",
    }
    if redis_url:
        config["REDIS_URL"] = redis_url
    return config


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Any]:
    from idp.factory import create_app

    flask_app = create_app(app_config)
    flask_app.config["TESTING"] = True
    yield flask_app
    from idp.stores.db import database

    database(flask_app).engine.dispose()
    redis_client = flask_app.extensions.get("idp.redis")
    if redis_client is not None:
        redis_client.close()


@pytest.fixture
def session(app: Any) -> Iterator[Any]:
    from idp.stores.db import database

    db_session = database(app).sessions()
    yield db_session
    db_session.close()


@contextmanager
def _app_store(app: Any) -> Iterator[Any]:
    """The app's SSO session store (the database, or Redis when the suite runs with it),
    on a fresh database session committed afterwards."""
    from idp.sessions.store import store
    from idp.stores.db import database

    db_session = database(app).sessions()
    try:
        with app.app_context():
            yield store(db_session)
        db_session.commit()
    finally:
        db_session.close()


def live_sso_sessions(app: Any) -> list[Any]:
    """The app's live SSO sessions, oldest first, read afresh from its store."""
    with _app_store(app) as sessions:
        return list(sessions.records())


def sso_session_by_sid(app: Any, sid: str) -> Any:
    """The app's live SSO session known to partners as ``sid``, or ``None``."""
    with _app_store(app) as sessions:
        return sessions.by_sid(sid)


def save_sso_session(app: Any, record: Any) -> None:
    """Write back a session record changed by a test (its ``auth_time``...)."""
    with _app_store(app) as sessions:
        sessions.save(record)


def clear_sso_sessions(app: Any) -> None:
    """End every SSO session of the app (a browser that lost its cookie)."""
    with _app_store(app) as sessions:
        for record in sessions.records():
            sessions.delete(record)


@pytest.fixture
def sso_sessions(app: Any) -> Any:
    """``sso_sessions()``: :func:`live_sso_sessions` of the test's app."""
    return lambda: live_sso_sessions(app)


@pytest.fixture
def engine(app: Any) -> Engine:
    from idp.stores.db import database

    return database(app).engine


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def idp(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], app_config: dict[str, Any]
) -> Any:
    """Run ``idp ARGS`` in-process against the test database; returns a Result."""
    from idp.cli.main import main

    monkeypatch.setenv("IDP_DATABASE_URL", app_config["DATABASE_URL"])
    monkeypatch.setenv("IDP_INSTANCE_PATH", app_config["INSTANCE_PATH"])
    monkeypatch.setenv("IDP_MASTER_KEY", MASTER_KEY)
    monkeypatch.setenv("IDP_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("IDP_BASE_URL", app_config["BASE_URL"])

    def run(*args: str, stdin: str = "") -> Result:
        capsys.readouterr()
        monkeypatch.setattr(
            sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
        )
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: compared before and after a refused command."""
    result = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            result[table.name] = sorted(tuple(map(repr, r)) for r in rows)
    return result


@pytest.fixture
def db_snapshot(app_config: dict[str, Any]) -> Any:
    def take() -> dict[str, list[tuple[Any, ...]]]:
        engine = make_engine(app_config["DATABASE_URL"])
        try:
            return snapshot(engine)
        finally:
            engine.dispose()

    return take


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())
