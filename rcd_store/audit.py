"""Append-only, hash-chained audit trail.

Each writer (one per process and thread) appends to its own chain segment so
that auditing never serialises the service. A segment opens with an anchor
event whose data names the hash of the latest event known at that moment.
``verify`` recomputes every hash and link: an altered, removed or reordered
event breaks its segment, and a removed anchor target breaks the next segment.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from rcd_store.db import utcnow
from rcd_store.models import AuditEvent

GENESIS = "0" * 64
ANCHOR_KIND = "audit.segment_opened"

_local = threading.local()


def _writer_segment() -> str:
    segment = getattr(_local, "segment", None)
    if segment is None:
        segment = _local.segment = uuid.uuid4().hex
    return segment


def new_writer_segment() -> None:
    """Start a new segment for the calling thread (after a fork, or in tests)."""
    _local.segment = None


# Committed head (seq, hash) of each segment this process writes, so that appending
# does not read the database: a segment has one writer (this thread), and a head
# enters the cache only once its transaction has committed (session events below).
_committed_heads: dict[str, tuple[int, str]] = {}
_PENDING = "rcd_store.audit.pending_heads"


@sa_event.listens_for(Session, "after_commit")
def _remember_heads(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        _committed_heads.update(pending)


@sa_event.listens_for(Session, "after_rollback")
def _forget_heads(session: Session) -> None:
    session.info.pop(_PENDING, None)


def event_hash(
    *,
    segment: str,
    seq: int,
    occurred_at: datetime,
    kind: str,
    actor: str | None,
    target: str | None,
    data: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of every field of an event and its predecessor."""
    payload = json.dumps(
        [segment, seq, occurred_at.isoformat(), kind, actor, target, data, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _cached_head(session: Session, segment: str) -> tuple[int, str] | None:
    """This transaction's latest append to the segment, else the last committed one."""
    pending = session.info.get(_PENDING, {})
    return pending.get(segment) or _committed_heads.get(segment)


def _head(session: Session, segment: str) -> AuditEvent | None:
    session.flush()
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.segment == segment)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def _append(
    session: Session,
    segment: str,
    seq: int,
    prev_hash: str,
    kind: str,
    actor: str | None,
    target: str | None,
    data: dict[str, Any],
) -> AuditEvent:
    occurred_at = utcnow()
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = event_hash(
        segment=segment,
        seq=seq,
        occurred_at=occurred_at,
        kind=kind,
        actor=actor,
        target=target,
        data=text,
        prev_hash=prev_hash,
    )
    event = AuditEvent(
        segment=segment,
        seq=seq,
        occurred_at=occurred_at,
        kind=kind,
        actor=actor,
        target=target,
        data=text,
        prev_hash=prev_hash,
        hash=digest,
    )
    session.add(event)  # flushed with the caller's transaction
    return event


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
    segment = _writer_segment()
    cached = _cached_head(session, segment)
    if cached is None:
        row = _head(session, segment)
        if row is None:
            latest = session.scalars(
                select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)
            ).first()
            anchor = {"anchor": latest.hash if latest else GENESIS}
            row = _append(session, segment, 0, GENESIS, ANCHOR_KIND, None, None, anchor)
        cached = (row.seq, row.hash)
    seq, prev_hash = cached
    appended = _append(session, segment, seq + 1, prev_hash, kind, actor, target, data or {})
    session.info.setdefault(_PENDING, {})[segment] = (appended.seq, appended.hash)
    return appended


@dataclass(frozen=True)
class AuditProblem:
    event_id: int | None
    segment: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"événement {self.event_id} (segment {self.segment[:8]}, n° {self.seq})"
        return f"{where} : {self.message}"


def _check_segment(
    segment: str, events: list[AuditEvent], known_hashes: set[str]
) -> Iterator[AuditProblem]:
    previous: AuditEvent | None = None
    for event in events:
        expected_seq = 0 if previous is None else previous.seq + 1
        expected_prev = GENESIS if previous is None else previous.hash
        if event.seq != expected_seq:
            yield AuditProblem(
                event.id,
                segment,
                event.seq,
                f"rang {expected_seq} attendu : événement supprimé ou déplacé",
            )
        elif event.prev_hash != expected_prev:
            yield AuditProblem(event.id, segment, event.seq, "chaînage rompu : événement réordonné")
        recomputed = event_hash(
            segment=event.segment,
            seq=event.seq,
            occurred_at=event.occurred_at,
            kind=event.kind,
            actor=event.actor,
            target=event.target,
            data=event.data,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            yield AuditProblem(
                event.id, segment, event.seq, "contenu altéré (empreinte différente)"
            )
        if event.seq == 0:
            yield from _check_anchor(event, segment, known_hashes)
        previous = event


def _check_anchor(event: AuditEvent, segment: str, known: set[str]) -> Iterator[AuditProblem]:
    if event.kind != ANCHOR_KIND:
        yield AuditProblem(event.id, segment, event.seq, "début de segment sans ancre")
        return
    try:
        anchor = json.loads(event.data).get("anchor")
    except (ValueError, AttributeError):
        anchor = None
    if anchor != GENESIS and anchor not in known:
        yield AuditProblem(event.id, segment, event.seq, "ancre introuvable : événement supprimé")


def verify(session: Session) -> list[AuditProblem]:
    """Every problem of the trail, in order; an empty list means it is intact."""
    events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.segment, AuditEvent.seq)))
    known = {e.hash for e in events}
    by_segment: dict[str, list[AuditEvent]] = {}
    for event in events:
        by_segment.setdefault(event.segment, []).append(event)
    problems: list[AuditProblem] = []
    for segment, segment_events in by_segment.items():
        problems.extend(_check_segment(segment, segment_events, known))
    return sorted(problems, key=lambda p: p.event_id or 0)


def export(session: Session, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Events as JSON-ready dicts, oldest first."""
    stmt = select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.id)
    if since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    for event in session.scalars(stmt):
        yield {
            "id": event.id,
            "segment": event.segment,
            "seq": event.seq,
            "occurred_at": event.occurred_at.isoformat(),
            "kind": event.kind,
            "actor": event.actor,
            "target": event.target,
            "data": json.loads(event.data),
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }
