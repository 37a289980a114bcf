"""Where SSO sessions live: the database by default, Redis when ``IDP_REDIS_URL`` is set.

docs/architecture.md ("Exploitation"): in production every web worker shares the
SSO sessions through Redis; the embedded service keeps them in its database. Both
stores hold the same :class:`SsoRecord` under the SHA-256 of the cookie (a copy of
either opens no session) and answer the same calls; :mod:`idp.sessions.sso` applies the
timeouts and the cookie rules on top.

Redis layout (prefix ``idp:sso:``), every key expiring with the session's absolute
timeout: ``s:<id_hash>`` the record (JSON), ``p:<id_hash>`` the set of participants
(canonical JSON, so that two requests adding partners at once both stay),
``sid:<sid>`` -> id_hash (Single Logout by SessionIndex), ``d:<declarant>`` the set of
the declarant's sessions (ended together at a password reset).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from flask import current_app, has_app_context
from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from idp.stores import db
from idp.stores.models import SsoSession
from rcd_store.db import rows_affected


@dataclass
class SsoRecord:
    """One browser's SSO session."""

    id_hash: str
    declarant_id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute timeout
    auth_time: datetime
    acr: str
    amr: list[str]
    #: opaque id shared with partners (SAML SessionIndex, OIDC sid)
    sid: str
    origin: str = "password"
    #: partners holding a session: [{"partner", "protocol", ...}] for Single Logout
    participants: list[dict[str, Any]] = field(default_factory=list)


class SessionStore(Protocol):
    """What :mod:`idp.sessions.sso` needs from a store."""

    def add(self, record: SsoRecord) -> None: ...
    def get(self, id_hash: str) -> SsoRecord | None: ...
    def by_sid(self, sid: str) -> SsoRecord | None: ...
    def touch(self, record: SsoRecord, now: datetime) -> None: ...
    def save(self, record: SsoRecord) -> None: ...
    def add_participant(self, record: SsoRecord, participant: dict[str, Any]) -> None: ...
    def delete(self, record: SsoRecord) -> None: ...
    def delete_for_declarant(self, declarant_id: str) -> int: ...
    def for_declarant(self, declarant_id: str) -> list[SsoRecord]: ...
    def records(self) -> list[SsoRecord]: ...


def store(session: Session | None = None) -> SessionStore:
    """The app's store: Redis when configured, else the database (through ``session``,
    by default the request's)."""
    client = current_app.extensions.get("idp.redis") if has_app_context() else None
    if client is not None:
        return RedisSessionStore(client)
    return SqlSessionStore(session if session is not None else db.session())


# ---------------------------------------------------------------------------- SQL


class SqlSessionStore:
    """Sessions as ``sso_session`` rows, written in the caller's transaction (which
    commits them with the rest of the request: a login and its audit event together)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _record(row: SsoSession) -> SsoRecord:
        return SsoRecord(
            id_hash=row.id_hash,
            declarant_id=row.declarant_id,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            auth_time=row.auth_time,
            acr=row.acr,
            amr=list(row.amr or []),
            sid=row.sid,
            origin=row.origin,
            participants=list(row.participants or []),
        )

    def add(self, record: SsoRecord) -> None:
        self.session.add(SsoSession(**asdict(record)))
        self.session.flush()

    def get(self, id_hash: str) -> SsoRecord | None:
        return record_by_hash(self.session.connection(), id_hash)

    def by_sid(self, sid: str) -> SsoRecord | None:
        row = self.session.scalars(select(SsoSession).where(SsoSession.sid == sid)).first()
        return None if row is None else self._record(row)

    def touch(self, record: SsoRecord, now: datetime) -> None:
        self.session.execute(
            update(SsoSession).where(SsoSession.id_hash == record.id_hash).values(last_seen_at=now)
        )
        self.session.commit()
        record.last_seen_at = now

    def save(self, record: SsoRecord) -> None:
        """Write back a live session's fields (authentication, times); not its participants."""
        values = asdict(record)
        del values["participants"], values["id_hash"]
        self.session.execute(
            update(SsoSession).where(SsoSession.id_hash == record.id_hash).values(**values)
        )

    def add_participant(self, record: SsoRecord, participant: dict[str, Any]) -> None:
        record.participants = [p for p in record.participants if p != participant]
        record.participants.append(participant)
        self.session.execute(
            update(SsoSession)
            .where(SsoSession.id_hash == record.id_hash)
            .values(participants=record.participants)
        )

    def delete(self, record: SsoRecord) -> None:
        self.session.execute(delete(SsoSession).where(SsoSession.id_hash == record.id_hash))

    def for_declarant(self, declarant_id: str) -> list[SsoRecord]:
        rows = self.session.scalars(
            select(SsoSession)
            .where(SsoSession.declarant_id == declarant_id)
            .order_by(SsoSession.created_at)
        )
        return [self._record(row) for row in rows]

    def records(self) -> list[SsoRecord]:
        """Every session, oldest first."""
        rows = self.session.scalars(select(SsoSession).order_by(SsoSession.created_at))
        return [self._record(row) for row in rows]

    def delete_for_declarant(self, declarant_id: str) -> int:
        return rows_affected(
            self.session.execute(delete(SsoSession).where(SsoSession.declarant_id == declarant_id))
        )


_FIELDS = [SsoSession.__table__.c[f.name] for f in fields(SsoRecord)]
_BY_HASH = select(*_FIELDS).where(SsoSession.id_hash == bindparam("id_hash"))


def record_by_hash(connection: Connection, id_hash: str) -> SsoRecord | None:
    """The ``sso_session`` row ``id_hash`` as a record: a prepared Core statement, no ORM
    object, no statement built (issue 18)."""
    found = connection.execute(_BY_HASH, {"id_hash": id_hash}).first()
    if found is None:
        return None
    record = SsoRecord(*found)
    record.amr, record.participants = list(record.amr or []), list(record.participants or [])
    return record


class SessionReader(Protocol):
    """What finding a session needs from a store."""

    def get(self, id_hash: str) -> SsoRecord | None: ...


class _SqlReader:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def get(self, id_hash: str) -> SsoRecord | None:
        return record_by_hash(self.connection, id_hash)


class SessionWriter(SessionReader, Protocol):
    """What opening a session needs from a store (:func:`idp.sessions.sso.open_in`)."""

    def add(self, record: SsoRecord) -> None: ...
    def delete(self, record: SsoRecord) -> None: ...


_INSERT = insert(SsoSession)


class _SqlWriter(_SqlReader):
    """Sessions written on a Core connection, in its transaction (no ORM object)."""

    def add(self, record: SsoRecord) -> None:
        self.connection.execute(_INSERT, asdict(record))

    def delete(self, record: SsoRecord) -> None:
        self.connection.execute(delete(SsoSession).where(SsoSession.id_hash == record.id_hash))


def writer(connection: Connection) -> SessionWriter:
    """The app's store, to open a session: Redis when configured, else the database
    through ``connection``, in its transaction."""
    client = current_app.extensions.get("idp.redis")
    return RedisSessionStore(client) if client is not None else _SqlWriter(connection)


def in_database() -> bool:
    """The app's sessions live in its database (no Redis configured)."""
    return current_app.extensions.get("idp.redis") is None


def reader(connection: Connection) -> SessionReader:
    """The app's store, to read only: Redis when configured, else the database through
    ``connection`` (a Core connection: no ORM session on the way)."""
    client = current_app.extensions.get("idp.redis")
    return RedisSessionStore(client) if client is not None else _SqlReader(connection)


# -------------------------------------------------------------------------- Redis

_TIMES = ("created_at", "last_seen_at", "expires_at", "auth_time")


def _canonical(participant: dict[str, Any]) -> str:
    return json.dumps(participant, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class RedisSessionStore:
    """Sessions in Redis, shared by every worker; each key expires with the session."""

    def __init__(self, client: Any, prefix: str = "idp:sso:") -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    @staticmethod
    def _encode(record: SsoRecord) -> str:
        data = asdict(record)
        del data["participants"]
        for name in _TIMES:
            data[name] = data[name].isoformat()
        return json.dumps(data, ensure_ascii=False)

    def _decode(self, raw: bytes, participants: set[bytes]) -> SsoRecord:
        data = json.loads(raw)
        for name in _TIMES:
            data[name] = datetime.fromisoformat(data[name])
        # stored in canonical JSON: sorting the text gives a stable order
        data["participants"] = [json.loads(p) for p in sorted(participants)]
        return SsoRecord(**data)

    def _expire_at(self, record: SsoRecord) -> int:
        return int(record.expires_at.timestamp() * 1000)

    def add(self, record: SsoRecord) -> None:
        at = self._expire_at(record)
        declarant = self._key("d", record.declarant_id)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._key("s", record.id_hash), self._encode(record), pxat=at)
            pipe.set(self._key("sid", record.sid), record.id_hash, pxat=at)
            pipe.sadd(declarant, record.id_hash)
            pipe.pexpireat(declarant, at, nx=True)  # a new set: its first expiry
            pipe.pexpireat(declarant, at, gt=True)  # then only ever later
            if record.participants:
                parts = self._key("p", record.id_hash)
                pipe.sadd(parts, *(_canonical(p) for p in record.participants))
                pipe.pexpireat(parts, at)
            pipe.execute()

    def get(self, id_hash: str) -> SsoRecord | None:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self._key("s", id_hash))
            pipe.smembers(self._key("p", id_hash))
            raw, participants = pipe.execute()
        return None if raw is None else self._decode(raw, participants)

    def by_sid(self, sid: str) -> SsoRecord | None:
        id_hash = self.client.get(self._key("sid", sid))
        return None if id_hash is None else self.get(id_hash.decode("ascii"))

    def touch(self, record: SsoRecord, now: datetime) -> None:
        record.last_seen_at = now
        self.save(record)

    def save(self, record: SsoRecord) -> None:
        """Write back a live session's fields (authentication, times); not its participants."""
        # XX: never recreates a session that ended meanwhile; KEEPTTL: same absolute end
        key = self._key("s", record.id_hash)
        self.client.set(key, self._encode(record), xx=True, keepttl=True)

    def add_participant(self, record: SsoRecord, participant: dict[str, Any]) -> None:
        record.participants = [p for p in record.participants if p != participant]
        record.participants.append(participant)
        key = self._key("p", record.id_hash)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, _canonical(participant))
            pipe.pexpireat(key, self._expire_at(record))
            pipe.execute()

    def delete(self, record: SsoRecord) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(
                self._key("s", record.id_hash),
                self._key("p", record.id_hash),
                self._key("sid", record.sid),
            )
            pipe.srem(self._key("d", record.declarant_id), record.id_hash)
            pipe.execute()

    def for_declarant(self, declarant_id: str) -> list[SsoRecord]:
        members = self.client.smembers(self._key("d", declarant_id))
        found = (self.get(member.decode("ascii")) for member in members)
        return sorted((r for r in found if r is not None), key=lambda r: r.created_at)

    def records(self) -> list[SsoRecord]:
        """Every session, oldest first (SCAN: never blocks the server)."""
        keys = self.client.scan_iter(match=self._key("s", "*"), count=500)
        prefix = len(self._key("s", ""))
        found = (self.get(key.decode("ascii")[prefix:]) for key in keys)
        return sorted((r for r in found if r is not None), key=lambda r: r.created_at)

    def delete_for_declarant(self, declarant_id: str) -> int:
        records = self.for_declarant(declarant_id)
        for record in records:
            self.delete(record)
        self.client.delete(self._key("d", declarant_id))
        return len(records)
