import hashlib
import json

import pytest
from sqlalchemy import delete, select, update

from rcd_store import audit
from rcd_store.db import utcnow
from rcd_store.models import AuditEvent, AuditKey


def _events(session, n: int = 4) -> list[AuditEvent]:
    for i in range(n):
        audit.record(session, "test.event", actor=f"D{i}", target="T", data={"i": i})
    session.commit()
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.segment, AuditEvent.seq)))


def test_intact_chain_verifies(session) -> None:
    events = _events(session)
    assert events[0].kind == audit.ANCHOR_KIND
    assert audit.verify(session) == []
    assert [e.seq for e in events] == list(range(5))


def test_altered_event_is_named(session) -> None:
    events = _events(session)
    session.execute(update(AuditEvent).where(AuditEvent.id == events[2].id).values(data='{"i":99}'))
    session.commit()
    problems = audit.verify(session)
    assert [p.event_id for p in problems] == [events[2].id]
    assert "altéré" in str(problems[0])


def test_removed_event_is_named(session) -> None:
    events = _events(session)
    session.execute(delete(AuditEvent).where(AuditEvent.id == events[2].id))
    session.commit()
    problems = audit.verify(session)
    assert problems and problems[0].event_id == events[3].id
    assert "supprimé" in str(problems[0])


def test_reordered_events_are_named(session) -> None:
    events = _events(session)
    (a_id, a_seq), (b_id, b_seq) = [(e.id, e.seq) for e in events[2:4]]
    # swap the positions of two events in their segment
    session.execute(update(AuditEvent).where(AuditEvent.id == a_id).values(seq=-1))
    session.execute(update(AuditEvent).where(AuditEvent.id == b_id).values(seq=a_seq))
    session.execute(update(AuditEvent).where(AuditEvent.id == a_id).values(seq=b_seq))
    session.commit()
    problems = audit.verify(session)
    assert {p.event_id for p in problems} >= {a_id, b_id}


def test_removed_anchor_target_breaks_the_next_segment(session) -> None:
    first = _events(session, 2)
    audit.new_writer_segment()
    audit.record(session, "test.event", data={})
    session.commit()
    session.execute(delete(AuditEvent).where(AuditEvent.id == first[-1].id))
    session.commit()
    messages = [str(p) for p in audit.verify(session)]
    assert any("ancre introuvable" in m for m in messages)


def test_segments_per_writer_chain_independently(session) -> None:
    _events(session, 2)
    audit.new_writer_segment()
    _events(session, 2)
    segments = {e.segment for e in session.scalars(select(AuditEvent))}
    assert len(segments) == 2
    assert audit.verify(session) == []


def test_export_since(session) -> None:
    events = _events(session, 2)
    exported = list(audit.export(session, since=events[-1].occurred_at))
    assert exported[-1]["hash"] == events[-1].hash
    assert all(e["occurred_at"] >= events[-1].occurred_at.isoformat() for e in exported)


def test_rolled_back_events_leave_no_gap(session, engine) -> None:
    """The writer's cached head moves only when the transaction commits."""
    from rcd_store.db import session_factory

    _events(session, 2)
    audit.record(session, "test.lost", data={})
    session.rollback()
    other = session_factory(engine)()
    audit.record(other, "test.kept", data={})
    audit.record(other, "test.kept", data={})
    other.commit()
    other.close()
    assert audit.verify(session) == []
    kinds = [e.kind for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert "test.lost" not in kinds and kinds.count("test.kept") == 2


def test_appends_read_no_head_once_committed(session, monkeypatch) -> None:
    _events(session, 1)
    calls = []
    original = audit._head
    monkeypatch.setattr(audit, "_head", lambda *a: calls.append(a) or original(*a))
    audit.record(session, "test.event", data={})
    audit.record(session, "test.event", data={})
    session.commit()
    assert calls == [] and audit.verify(session) == []


def test_a_warm_segment_appends_on_a_plain_connection(session, engine) -> None:
    """Once a segment's key and head are known, it is appended to on a Core connection
    (the group commit's); a rolled-back append leaves the head where it was."""
    assert audit.warm_segment(engine, "core-writer") is None  # new: read or opened first
    audit.record_many(session, [("test.first", None, None, {})], segment="core-writer")
    assert audit.warm_segment(engine, "core-writer") is None  # not committed yet
    session.commit()
    warm = audit.warm_segment(engine, "core-writer")
    assert warm is not None and warm.head[0] == 1
    with engine.connect() as connection, connection.begin() as transaction:
        warm.append(connection, [("test.lost", None, None, {})])
        transaction.rollback()
    assert audit.warm_segment(engine, "core-writer").head == warm.head
    with engine.begin() as connection:
        head = warm.append(connection, [("test.core", "D1", "T", {"n": 1})] * 2)
    warm.committed(head)
    assert audit.warm_segment(engine, "core-writer").head == head and head[0] == 3
    assert audit.verify(session) == []
    found = session.scalars(select(AuditEvent).where(AuditEvent.segment == "core-writer"))
    assert [e.kind for e in found] == [audit.ANCHOR_KIND, "test.first", "test.core", "test.core"]


# ------------------------------------------------------------ keyed chain (issue 13 item 6)


def _sha256(event: AuditEvent) -> str:
    """What an attacker without the key computes (the unkeyed hash of every field)."""
    payload = json.dumps(
        [
            event.segment,
            event.seq,
            event.occurred_at.isoformat(),
            event.kind,
            event.actor,
            event.target,
            event.data,
            event.prev_hash,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _rewrite_from(session, events: list[AuditEvent], index: int, new_data: str) -> None:
    """Edit one event, then recompute its hash and every later hash, link and anchor."""
    events[index].data = new_data
    previous = events[index - 1].hash if index else audit.GENESIS
    renamed = {}
    for event in events[index:]:
        old = event.hash
        event.prev_hash = previous if event.seq else audit.GENESIS
        if event.seq == 0 and json.loads(event.data).get("anchor") in renamed:
            event.data = json.dumps({"anchor": renamed[json.loads(event.data)["anchor"]]})
        event.hash = _sha256(event)
        renamed[old] = event.hash
        previous = event.hash
    session.commit()


def test_edit_and_recompute_is_detected(session) -> None:
    """Editing one event and recomputing every later hash and anchor is still found:
    hashes are keyed (HMAC under a key sealed by the master key)."""
    events = _events(session, 4)
    _rewrite_from(session, events, 2, '{"i":99}')
    problems = audit.verify(session)
    assert problems and problems[0].event_id == events[2].id
    assert "altéré" in str(problems[0])


def test_edit_and_recompute_across_segments_is_detected(session) -> None:
    first = _events(session, 2)
    audit.new_writer_segment()
    _events(session, 2)
    every = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    _rewrite_from(session, every, 1, '{"i":42}')
    ids = {p.event_id for p in audit.verify(session)}
    assert first[1].id in ids


def test_chain_key_is_sealed_in_the_database(session, app) -> None:
    """The key row opens only under the master key; its plaintext is nowhere in it."""
    _events(session, 1)
    row = session.get(AuditKey, audit.KEY_ROW)
    key = audit.chain_key(session)
    assert row is not None and key is not None
    assert key.secret not in bytes(row.sealed)
    from idp.stores.sealing import MasterKeySealer
    from keys.crypto import KeyDecryptionError, MasterKey

    with pytest.raises(KeyDecryptionError):
        MasterKeySealer(MasterKey.generate()).open(bytes(row.sealed), context=b"audit-chain-key/v1")


def test_unbound_database_cannot_write_the_trail(engine) -> None:
    from sqlalchemy.orm import Session

    from rcd_store.db import make_engine

    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        with Session(other) as session, pytest.raises(audit.AuditKeyUnavailable):
            audit.record(session, "test.event")
    finally:
        other.dispose()


def _legacy_events(session, n: int) -> list[AuditEvent]:
    """A trail written by the unkeyed version (plain SHA-256), before any chain key."""
    segment = "legacy" + "0" * 26
    previous = audit.GENESIS
    rows = []
    for seq in range(n + 1):
        kind, data = (
            (audit.ANCHOR_KIND, '{"anchor":"' + audit.GENESIS + '"}')
            if not seq
            else (
                "test.old",
                json.dumps({"i": seq}),
            )
        )
        event = AuditEvent(
            segment=segment,
            seq=seq,
            occurred_at=utcnow(),
            kind=kind,
            actor=None,
            target=None,
            data=data,
            prev_hash=previous,
        )
        event.hash = _sha256(event)
        previous = event.hash
        session.add(event)
        rows.append(event)
    session.commit()
    return rows


def test_legacy_trail_verifies_up_to_the_key_marker(session) -> None:
    """Unkeyed events written before the key existed still verify (as legacy), and new
    events are keyed after them."""
    _legacy_events(session, 3)
    _events(session, 2)
    assert audit.verify(session) == []
    key = audit.chain_key(session)
    assert key is not None and next(iter(key.legacy.values()))[0] == 3


def test_legacy_trail_cannot_be_rewritten_after_keying(session) -> None:
    legacy = _legacy_events(session, 3)
    _events(session, 1)  # the chain key is made now, sealing the legacy heads
    _rewrite_from(session, legacy, 2, '{"i":99}')
    messages = [str(p) for p in audit.verify(session)]
    assert any("réécrit depuis la clé du journal" in m for m in messages)


def test_legacy_trail_cut_after_keying_is_detected(session) -> None:
    legacy = _legacy_events(session, 3)
    _events(session, 1)
    session.execute(delete(AuditEvent).where(AuditEvent.id == legacy[-1].id))
    session.commit()
    assert any("coupés" in str(p) for p in audit.verify(session))


def test_truncation_is_detected_with_a_checkpoint(session) -> None:
    """Deleting the newest events of a segment leaves a valid chain: only a checkpoint
    taken before finds it."""
    events = _events(session, 4)
    mark = audit.checkpoint(session)
    session.execute(delete(AuditEvent).where(AuditEvent.id.in_([e.id for e in events[-2:]])))
    session.commit()
    assert audit.verify(session) == []  # consistent without the checkpoint
    problems = audit.verify(session, mark)
    expected = (
        f"segment {events[0].segment[:8]} (n° 4) : derniers événements coupés : "
        "absent alors que le point de contrôle le couvre"
    )
    assert [str(p) for p in problems] == [expected]


def test_deleted_segment_is_detected_with_a_checkpoint(session) -> None:
    _events(session, 2)
    audit.new_writer_segment()
    segment = max(_events(session, 2), key=lambda e: e.id).segment  # the newest one
    mark = audit.checkpoint(session)
    session.execute(delete(AuditEvent).where(AuditEvent.segment == segment))
    session.commit()
    assert audit.verify(session) == []
    messages = [str(p) for p in audit.verify(session, mark)]
    assert any("segment supprimé" in m for m in messages)


def test_good_trail_verifies_against_an_older_checkpoint(session) -> None:
    _events(session, 2)
    mark = audit.checkpoint(session)
    audit.record(session, "test.later", data={})
    session.commit()
    audit.new_writer_segment()
    audit.record(session, "test.other_writer", data={})
    session.commit()
    assert audit.verify(session, mark) == []


def test_replaced_key_is_detected_with_a_checkpoint(session, engine) -> None:
    """Deleting the key row so a new one is made over a forged trail is found."""
    _events(session, 2)
    mark = audit.checkpoint(session)
    session.execute(delete(AuditKey))
    session.commit()
    audit.bind(engine, audit._sealer(engine))  # forget the cached key, as a new worker
    audit.new_writer_segment()
    audit.record(session, "test.after", data={})
    session.commit()
    messages = [str(p) for p in audit.verify(session, mark)]
    assert "clé du journal remplacée" in messages
