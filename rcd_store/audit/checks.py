"""The checks of the audit trail (:mod:`rcd_store.audit`): a signed :class:`Checkpoint` of
every segment head, :func:`verify` (every problem of the trail, in order) and :func:`export`.
Writing the trail needs none of this; each is read through :mod:`rcd_store.audit` as well."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rcd_store.audit import ANCHOR_KIND, GENESIS, ChainKey, _heads, chain_key, expected_hash
from rcd_store.db import utcnow
from rcd_store.models import AuditEvent


@dataclass(frozen=True)
class Checkpoint:
    """The head of every segment at one instant, under one chain key: every event it
    covers must still be there, unchanged, for the trail to verify against it."""

    taken_at: datetime
    key_id: str
    heads: Mapping[str, tuple[int, str]]
    events: int

    def as_claims(self) -> dict[str, Any]:
        return {
            "taken_at": self.taken_at.isoformat(),
            "key_id": self.key_id,
            "events": self.events,
            "segments": {s: {"seq": h[0], "hash": h[1]} for s, h in sorted(self.heads.items())},
        }

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Checkpoint:
        """Read the claims of a checkpoint whose signature was checked; ``ValueError``
        (or ``KeyError``/``TypeError``) if malformed."""
        segments = claims["segments"]
        if not isinstance(segments, dict):
            raise TypeError("segments must be an object")
        heads = {str(s): (int(h["seq"]), str(h["hash"])) for s, h in segments.items()}
        taken_at = datetime.fromisoformat(str(claims["taken_at"]))
        return cls(taken_at, str(claims["key_id"]), heads, int(claims["events"]))


def checkpoint(session: Session) -> Checkpoint:
    """The heads of every segment now (to be signed and kept outside the database)."""
    key = chain_key(session)
    assert key is not None
    heads = {s: (e.seq, e.hash) for s, e in _heads(session).items()}
    count = sum(seq + 1 for seq, _ in heads.values())
    return Checkpoint(utcnow(), key.key_id, heads, count)


# -------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class AuditProblem:
    event_id: int | None
    segment: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        if not self.segment:
            return self.message
        if self.event_id is None:
            return f"segment {self.segment[:8]} (n° {self.seq}) : {self.message}"
        where = f"événement {self.event_id} (segment {self.segment[:8]}, n° {self.seq})"
        return f"{where} : {self.message}"


def _check_segment(
    key: ChainKey | None, segment: str, events: list[AuditEvent], known_hashes: set[str]
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
        if not hmac.compare_digest(expected_hash(key, event), event.hash):
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


def _check_heads(
    heads: Mapping[str, tuple[int, str]],
    events: Mapping[tuple[str, int], AuditEvent],
    segments: set[str],
    what: str,
) -> Iterator[AuditProblem]:
    """Every (segment, rank) -> hash of ``heads`` is still in the trail, unchanged."""
    for segment, (seq, digest) in sorted(heads.items()):
        event = events.get((segment, seq))
        if event is None:
            cut = "segment supprimé" if segment not in segments else "derniers événements coupés"
            yield AuditProblem(None, segment, seq, f"{cut} : absent alors que {what} le couvre")
        elif not hmac.compare_digest(event.hash, digest):
            yield AuditProblem(event.id, segment, seq, f"réécrit depuis {what}")


def verify(session: Session, against: Checkpoint | None = None) -> list[AuditProblem]:
    """Every problem of the trail, in order; an empty list means it is intact.

    Each event's keyed hash and link is recomputed (an edit is found even if every
    later hash was recomputed without the key); the heads sealed with the key must
    still hold (legacy events); with ``against``, every event the checkpoint covers
    must still be there unchanged (truncation, rewrite, or a replaced key).
    """
    events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.segment, AuditEvent.seq)))
    key = chain_key(session, create=False)
    problems: list[AuditProblem] = []
    if key is None and events:
        problems.append(
            AuditProblem(None, "", None, "journal sans clé de chaînage (lancez « idp db upgrade »)")
        )
    by_segment: dict[str, list[AuditEvent]] = {}
    for event in events:
        by_segment.setdefault(event.segment, []).append(event)
    known = {e.hash for e in events}
    for segment, segment_events in by_segment.items():
        problems.extend(_check_segment(key, segment, segment_events, known))
    located = {(e.segment, e.seq): e for e in events}
    if key is not None:
        problems.extend(_check_heads(key.legacy, located, set(by_segment), "la clé du journal"))
    if against is not None:
        if key is None or against.key_id != key.key_id:
            problems.append(AuditProblem(None, "", None, "clé du journal remplacée"))
        problems.extend(
            _check_heads(against.heads, located, set(by_segment), "le point de contrôle")
        )
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
