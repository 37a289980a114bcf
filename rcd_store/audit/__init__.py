"""Append-only audit trail, chained under a secret key.

Each writer (one per process and thread) appends to its own chain segment so
that auditing never serialises the service. A segment opens with an anchor
event whose data names the hash of the latest event known at that moment.

Every event's hash is an HMAC-SHA256, under the chain key, of all its fields and
of its predecessor's hash. The chain key is random, stored in ``audit_key``
sealed under the master key (the application's :class:`~rcd_store.sealing.Sealer`,
bound to the engine with :func:`bind`), and made on first need or by ``idp db
upgrade``. Without the master key, someone who can write the database cannot
recompute a valid hash: an edited event and every later one fail ``verify``, even
after the attacker recomputed them.

Events written before the chain was keyed (plain SHA-256) stay verifiable as
*legacy*: the sealed key also holds the head (rank, hash) of every segment at the
moment it was made, so those events are checked up to that marker and cannot be
rewritten either. Cutting off the newest events, or a whole segment, leaves a
consistent chain: a signed checkpoint of every segment head kept outside the
database (:class:`Checkpoint`, ``idp audit checkpoint``) makes it detectable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rcd_store.db import utcnow
from rcd_store.errors import DirectoryError
from rcd_store.models import AuditEvent, AuditKey
from rcd_store.sealing import Sealer

GENESIS = "0" * 64
ANCHOR_KIND = "audit.segment_opened"
KEY_ROW = 1
_KEY_CONTEXT = b"audit-chain-key/v1"
_KEY_ID_LABEL = b"interops-idp/audit-key-id/v1"

_local = threading.local()


class AuditKeyUnavailable(DirectoryError, RuntimeError):
    """No sealer is bound to this database: the chain cannot be written or checked
    (a defect of the deployment, not of the request)."""

    http_status = 500


def _writer_segment() -> str:
    segment = getattr(_local, "segment", None)
    if segment is None:
        segment = _local.segment = uuid.uuid4().hex
    return segment


def new_writer_segment() -> None:
    """Start a new segment for the calling thread (after a fork, or in tests)."""
    _local.segment = None


# ----------------------------------------------------------------------- chain key


@dataclass(frozen=True)
class ChainKey:
    """The HMAC key of the chain and the legacy heads it was made over."""

    secret: bytes = field(repr=False)
    #: segment -> (rank, hash) of its last unkeyed event when the key was made
    legacy: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def mac(self, payload: bytes) -> str:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key: a checkpoint names the key it covers."""
        return self.mac(_KEY_ID_LABEL)[:32]

    def is_legacy(self, segment: str, seq: int) -> bool:
        head = self.legacy.get(segment)
        return head is not None and seq <= head[0]

    def dumps(self) -> bytes:
        data = {
            "v": 1,
            "secret": base64.b64encode(self.secret).decode("ascii"),
            "legacy": {segment: list(head) for segment, head in self.legacy.items()},
        }
        return json.dumps(data, sort_keys=True).encode("utf-8")

    @classmethod
    def loads(cls, raw: bytes) -> ChainKey:
        data = json.loads(raw)
        legacy = {str(s): (int(head[0]), str(head[1])) for s, head in data["legacy"].items()}
        return cls(base64.b64decode(data["secret"]), legacy)


_sealers: weakref.WeakKeyDictionary[Engine, Sealer] = weakref.WeakKeyDictionary()
_keys: weakref.WeakKeyDictionary[Engine, ChainKey] = weakref.WeakKeyDictionary()
_PENDING_KEY = "rcd_store.audit.pending_key"


def bind(engine: Engine, sealer: Sealer) -> None:
    """Let sessions on ``engine`` read and make the chain key, sealed by ``sealer``."""
    _sealers[engine] = sealer
    _keys.pop(engine, None)
    _committed_heads.pop(_database(engine), None)


def _engine(session: Session) -> Engine:
    bound = session.get_bind()
    return bound if isinstance(bound, Engine) else bound.engine


_names: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def _database(engine: Engine) -> str:
    """The database's name, as a key shared by every engine on it (rendered once)."""
    name = _names.get(engine)
    if name is None:
        name = _names[engine] = engine.url.render_as_string(hide_password=True)
    return name


def _sealer(engine: Engine) -> Sealer:
    sealer = _sealers.get(engine)
    if sealer is None:
        raise AuditKeyUnavailable("audit chain key not bound to this database (audit.bind)")
    return sealer


def chain_key(session: Session, *, create: bool = True) -> ChainKey | None:
    """The chain key of the session's database; made (and sealed) when there is none and
    ``create`` is true, in the caller's transaction: kept only if that commits."""
    engine = _engine(session)
    key = _keys.get(engine) or session.info.get(_PENDING_KEY)
    if key is not None:
        return key
    sealer = _sealer(engine)
    row = session.get(AuditKey, KEY_ROW)
    if row is None:
        if not create:
            return None
        return _create_key(session, sealer)
    key = ChainKey.loads(sealer.open(bytes(row.sealed), context=_KEY_CONTEXT))
    _keys[engine] = key
    return key


def _create_key(session: Session, sealer: Sealer) -> ChainKey:
    key = ChainKey(os.urandom(32), {s: (h.seq, h.hash) for s, h in _heads(session).items()})
    try:
        with session.begin_nested():
            session.add(AuditKey(id=KEY_ROW, sealed=sealer.seal(key.dumps(), context=_KEY_CONTEXT)))
    except IntegrityError:  # another writer made it first: use theirs
        row = session.get(AuditKey, KEY_ROW, populate_existing=True)
        assert row is not None
        return ChainKey.loads(sealer.open(bytes(row.sealed), context=_KEY_CONTEXT))
    session.info[_PENDING_KEY] = key
    return key


# ------------------------------------------------------------------------ writing

# Committed head (seq, hash) of each segment this process writes, per database URL (two
# engines on one database share it), so that appending does not read the database: a
# segment has one writer (this thread), and a head enters the cache only once its
# transaction has committed.
_committed_heads: dict[str, dict[str, tuple[int, str]]] = {}
_PENDING = "rcd_store.audit.pending_heads"


@sa_event.listens_for(Session, "after_commit")
def _remember_heads(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    key = session.info.pop(_PENDING_KEY, None)
    if pending or key:
        engine = _engine(session)
        if key is not None:
            _keys[engine] = key
        _committed_heads.setdefault(_database(engine), {}).update(pending or {})


@sa_event.listens_for(Session, "after_rollback")
def _forget_heads(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_PENDING_KEY, None)


def _payload(
    segment: str,
    seq: int,
    occurred_at: datetime,
    kind: str,
    actor: str | None,
    target: str | None,
    data: str,
    prev_hash: str,
) -> bytes:
    fields = [segment, seq, occurred_at.isoformat(), kind, actor, target, data, prev_hash]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def legacy_hash(**fields: Any) -> str:
    """SHA-256 of an event written before the chain was keyed (same fields)."""
    return hashlib.sha256(_payload(**fields)).hexdigest()


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "segment": event.segment,
        "seq": event.seq,
        "occurred_at": event.occurred_at,
        "kind": event.kind,
        "actor": event.actor,
        "target": event.target,
        "data": event.data,
        "prev_hash": event.prev_hash,
    }


def expected_hash(key: ChainKey | None, event: AuditEvent) -> str:
    """The hash ``event`` must carry: HMAC under the key, SHA-256 for a legacy event."""
    fields = _fields(event)
    if key is None or key.is_legacy(event.segment, event.seq):
        return legacy_hash(**fields)
    return key.mac(_payload(**fields))


def _cached_head(session: Session, segment: str) -> tuple[int, str] | None:
    """This transaction's latest append to the segment, else the last committed one."""
    pending = session.info.get(_PENDING, {})
    committed = _committed_heads.get(_database(_engine(session)), {})
    return pending.get(segment) or committed.get(segment)


def _head(session: Session, segment: str) -> AuditEvent | None:
    session.flush()
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.segment == segment)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


_FIELDS = ("segment", "seq", "prev_hash")
_EVENTS = cast(Table, AuditEvent.__table__)


def _chained(
    key: ChainKey,
    position: tuple[str, int, str],
    kind: str,
    actor: str | None,
    target: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The columns of the event at ``position`` (segment, rank, previous hash), hash included."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    fields: dict[str, Any] = dict(zip(_FIELDS, position, strict=True))
    fields.update(occurred_at=utcnow(), kind=kind, actor=actor, target=target, data=text)
    return {**fields, "hash": key.mac(_payload(**fields))}


def _append(session: Session, columns: dict[str, Any]) -> AuditEvent:
    event = AuditEvent(**columns)
    session.add(event)  # flushed with the caller's transaction
    return event


def _tail(session: Session, key: ChainKey, segment: str) -> tuple[int, str]:
    """Rank and hash of the segment's last event (its anchor added if it is new)."""
    cached = _cached_head(session, segment)
    if cached is None:
        row = _head(session, segment)
        if row is None:
            latest = session.scalars(
                select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
            ).first()
            anchor = {"anchor": latest.hash if latest else GENESIS}
            row = _append(
                session, _chained(key, (segment, 0, GENESIS), ANCHOR_KIND, None, None, anchor)
            )
        cached = (row.seq, row.hash)
    return cached


def record(
    session: Session,
    kind: str,
    *,
    actor: str | None = None,
    target: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event in the caller's transaction (committed, or lost, with the change).

    ``actor`` and ``target`` name people by declarant id only, never by name.
    """
    key = chain_key(session)
    assert key is not None
    segment = _writer_segment()
    seq, prev_hash = _tail(session, key, segment)
    position = (segment, seq + 1, prev_hash)
    appended = _append(session, _chained(key, position, kind, actor, target, data or {}))
    session.info.setdefault(_PENDING, {})[segment] = (appended.seq, appended.hash)
    return appended


def record_many(
    session: Session,
    events: Sequence[tuple[str, str | None, str | None, dict[str, Any]]],
    *,
    segment: str | None = None,
) -> None:
    """Append ``events``, in order, in the caller's transaction with one multi-row INSERT
    (SQLAlchemy Core, no ORM object): the hot paths' group commit, as :func:`record`, in
    the caller's thread's segment or in ``segment`` (one writer at a time, the caller's)."""
    key = chain_key(session)
    assert key is not None
    segment = segment or _writer_segment()
    seq, prev_hash = _tail(session, key, segment)
    session.flush()  # a new segment's anchor goes in first
    head = _insert_chained(session.connection(), key, (segment, seq, prev_hash), events)
    if head is not None:
        session.info.setdefault(_PENDING, {})[segment] = head


def _insert_chained(
    connection: Connection,
    key: ChainKey,
    tail: tuple[str, int, str],
    events: Sequence[tuple[str, str | None, str | None, dict[str, Any]]],
) -> tuple[int, str] | None:
    """INSERT ``events`` chained after ``tail`` (segment, rank, hash); the new head."""
    segment, seq, prev_hash = tail
    rows = []
    for kind, actor, target, data in events:
        seq += 1
        rows.append(_chained(key, (segment, seq, prev_hash), kind, actor, target, data))
        prev_hash = rows[-1]["hash"]
    if not rows:
        return None
    connection.execute(insert(_EVENTS), rows)
    return seq, prev_hash


@dataclass(frozen=True)
class WarmSegment:
    """A segment whose chain key and committed head this process knows: it can be
    appended to on a plain Core connection, without a session or a read
    (:func:`warm_segment`, :meth:`append`, then :meth:`committed` once committed)."""

    engine: Engine
    key: ChainKey
    segment: str
    head: tuple[int, str]

    def append(
        self,
        connection: Connection,
        events: Sequence[tuple[str, str | None, str | None, dict[str, Any]]],
    ) -> tuple[int, str]:
        """INSERT ``events`` after the head, in ``connection``'s transaction."""
        return (
            _insert_chained(connection, self.key, (self.segment, *self.head), events) or self.head
        )

    def committed(self, head: tuple[int, str]) -> None:
        """The transaction of :meth:`append` committed: ``head`` is the segment's head."""
        _committed_heads.setdefault(_database(self.engine), {})[self.segment] = head


def warm_segment(engine: Engine, segment: str) -> WarmSegment | None:
    """``segment`` of ``engine``'s chain when its key and committed head are known here;
    ``None`` otherwise (a new segment, an unread key: :func:`record_many` reads them)."""
    key = _keys.get(engine)
    head = _committed_heads.get(_database(engine), {}).get(segment)
    return WarmSegment(engine, key, segment, head) if key and head else None


def _heads(session: Session) -> dict[str, AuditEvent]:
    """The last event of every segment."""
    session.flush()
    heads: dict[str, AuditEvent] = {}
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.segment, AuditEvent.seq)):
        heads[event.segment] = event
    return heads


# the checks of the trail (rcd_store/audit/checks.py), read through here too: last, as they
# use the chain above
from rcd_store.audit.checks import AuditProblem as AuditProblem
from rcd_store.audit.checks import Checkpoint as Checkpoint
from rcd_store.audit.checks import checkpoint as checkpoint
from rcd_store.audit.checks import export as export
from rcd_store.audit.checks import verify as verify
