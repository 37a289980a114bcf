from sqlalchemy import delete, select, update

from rcd_store import audit
from rcd_store.models import AuditEvent


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
