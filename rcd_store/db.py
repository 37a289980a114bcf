"""Declarative base, engine and session factory of the directory."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import psycopg
from psycopg.abc import PQGen
from sqlalchemy import DateTime, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Engine, ExceptionContext, Result
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from rcd_store.errors import DirectoryError

RV = TypeVar("RV")
#: what psycopg's wait functions raise when their timeout expires (private in psycopg,
#: present since the ``timeout`` of ``Connection.wait``: a missing one fails at import)
_WAIT_TIMEOUT: type[Exception] = psycopg.errors._WaitTimeout

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Timeouts:
    """Bounds on every call to a PostgreSQL server, in seconds (0: no bound).

    ``connect`` bounds opening a connection (libpq ``connect_timeout``, 2 s at least);
    ``statement`` is the server's ``statement_timeout`` (a slow query is cancelled
    cleanly) and, one second later, the client's own deadline on any wait for the
    server (:class:`BoundedConnection`); ``pool`` bounds the wait for a free pooled
    connection. Kernel keepalives and ``tcp_user_timeout`` are set too, but they do
    not fire when a proxy in between still acknowledges packets: only the client
    deadline bounds a call then.
    """

    connect: float = 0
    statement: float = 0
    pool: float = 30

    @property
    def deadline(self) -> float | None:
        return self.statement + 1 if self.statement else None

    def connect_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30}
        if self.connect:
            args["connect_timeout"] = max(2, math.ceil(self.connect))
        if self.statement:
            millis = int(self.statement * 1000)
            args["options"] = f"-c statement_timeout={millis}"
            args["tcp_user_timeout"] = millis + 1000
        return args


class DatabaseDeadline(DirectoryError, psycopg.OperationalError):
    """The server was not heard from within the deadline: the connection is closed
    (still a driver error, so SQLAlchemy sees a disconnect; try again later)."""

    http_status = 503


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends by ``deadline``.

    psycopg runs each protocol exchange as a generator driven by :meth:`wait`; giving
    it a timeout turns a server that went silent (network partition, packets dropped)
    into :class:`DatabaseDeadline` instead of a worker blocked until its supervisor
    kills it. The connection is closed first, so SQLAlchemy sees a disconnect and
    discards it.
    """

    deadline: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        try:
            return super().wait(gen, interval, timeout if timeout is not None else self.deadline)
        except _WAIT_TIMEOUT:
            self.close()  # no protocol state to trust any more
            raise DatabaseDeadline(
                f"pas de réponse du serveur PostgreSQL en {self.deadline} s"
            ) from None


def _bound(engine: Engine, timeouts: Timeouts) -> None:
    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> BoundedConnection:
        connection = BoundedConnection.connect(*cargs, **cparams)
        connection.deadline = timeouts.deadline
        return connection

    def no_second_wait(context: ExceptionContext) -> None:
        # a ping that hit the deadline fails the checkout at once, instead of being
        # taken for a stale connection and followed by a reconnection that would wait
        # as long again
        if context.is_pre_ping and isinstance(context.original_exception, DatabaseDeadline):
            context.is_disconnect = False

    event.listen(engine, "do_connect", connect)
    event.listen(engine, "handle_error", no_second_wait)


def make_engine(url: str, timeouts: Timeouts | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout; a
    PostgreSQL engine given ``timeouts`` bounds every call (see :class:`Timeouts`)."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
    else:
        kwargs.setdefault("pool_pre_ping", True)
        # a production worker runs 16 request threads beside its
        # background senders: SQLAlchemy's default 5 + 10 connections would make one wait
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 14)
    postgres = url.startswith("postgresql")
    if postgres and timeouts is not None:
        kwargs.setdefault("connect_args", timeouts.connect_args())
        kwargs.setdefault("pool_timeout", timeouts.pool)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif postgres and timeouts is not None and engine.dialect.driver == "psycopg":
        _bound(engine, timeouts)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rows_affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed (``Session.execute`` types its result loosely)."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def upsert(bind: Session | Engine, table: Any) -> postgresql.Insert | sqlite.Insert:
    """``INSERT INTO table`` in the dialect of ``bind`` (PostgreSQL or SQLite), the one
    that offers ``on_conflict_do_update`` / ``on_conflict_do_nothing``: an insert that
    races with another one resolves in the database, never by read-then-write."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)
