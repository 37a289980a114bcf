"""One SQLAlchemy session per request, opened lazily and closed by the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from idp import migrate
from idp.stores import generations, group_commit
from rcd_store.db import Timeouts, make_engine, session_factory
from rcd_store.services import ACCESS_DELAY

EXTENSION = "idp.db"


class Database:
    """The engine and session factory of one app (kept in ``app.extensions``)."""

    def __init__(self, url: str, timeouts: Timeouts | None = None) -> None:
        self.url = url
        self.timeouts = timeouts
        self.engine: Engine = make_engine(url, timeouts)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)

    def upgrade(self) -> None:
        """Migrate on an engine of its own, without the statement timeout of requests
        (an index built on a large directory may take longer)."""
        if self.timeouts is None or self.engine.dialect.name != "postgresql":
            migrate.upgrade(self.engine)
            return
        engine = make_engine(self.url, Timeouts(connect=self.timeouts.connect))
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()

    def is_empty(self) -> bool:
        return migrate.current_revision(self.engine) is None


def timeouts(config: Mapping[str, Any]) -> Timeouts:
    """The database bounds of ``IDP_DB_CONNECT_TIMEOUT``, ``IDP_DB_STATEMENT_TIMEOUT``
    and ``IDP_DB_POOL_TIMEOUT``."""
    return Timeouts(
        connect=float(config["DB_CONNECT_TIMEOUT"]),
        statement=float(config["DB_STATEMENT_TIMEOUT"]),
        pool=float(config["DB_POOL_TIMEOUT"]),
    )


def init_app(app: Flask) -> Database:
    database = Database(app.config["DATABASE_URL"], timeouts(app.config))
    # the access delay of new habilitations (rcd_store.services.grant_habilitation)
    database.sessions.configure(
        info={ACCESS_DELAY: int(app.config.get("HABILITATION_DELAY_SECONDS") or 0)}
    )
    app.extensions[EXTENSION] = database
    generations.init_app(app, lambda: database.engine, database.sessions)
    group_commit.init_app(app, database.sessions)
    app.teardown_appcontext(_close_session)
    return database


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions[EXTENSION]  # type: ignore[no-any-return]


def session() -> Session:
    """The request's session (created on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    return g.db_session  # type: ignore[no-any-return]


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
