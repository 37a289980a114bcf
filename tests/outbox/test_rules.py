"""The delivery rules without a server: a sender that lost the server's answer makes
the message uncertain (never sent again), records outlive their retention only so
long, letters set codes and links in the monospace font and run over pages."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from pypdf import PdfReader
from sqlalchemy import select

from idp.outbox.letters import french_date, marked_up, render_letter
from idp.stores.sealing import app_sealer
from rcd_store import outbox
from rcd_store.models import Outbox
from tests.outbox.test_files import CODE, queue


class Doubtful:
    """Hands the message over, then loses the answer."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: outbox.Message, handover: Any) -> None:
        self.calls += 1
        handover()
        raise outbox.InDoubt("réponse perdue")


def test_a_lost_answer_is_never_sent_again(app: Any, session: Any) -> None:
    row = queue(app, session)
    sender = Doubtful()
    assert outbox.deliver(session, app_sealer(app), sender).uncertain == 1
    assert outbox.deliver(session, app_sealer(app), sender).uncertain == 0
    assert sender.calls == 1
    session.expire_all()
    record = session.get(Outbox, row.id)
    assert record is not None and (record.state, record.body_sealed) == ("uncertain", None)


class Usurped:
    """Another worker takes the claim over before the point of no return."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.handed = False

    def send(self, message: outbox.Message, handover: Any) -> None:
        self.session.execute(
            Outbox.__table__.update().where(Outbox.id == message.id).values(claimed_by="autre")
        )
        self.session.commit()
        handover()  # raises: this worker must not hand it over
        self.handed = True


def test_a_worker_whose_claim_was_taken_does_not_hand_over(app: Any, session: Any) -> None:
    from idp.stores.db import database

    queue(app, session)
    other = database(app).sessions()
    try:
        sender = Usurped(other)
        outbox.deliver(session, app_sealer(app), sender)
    finally:
        other.close()
    assert not sender.handed
    session.expire_all()
    assert session.scalars(select(Outbox.claimed_by)).one() == "autre"


def test_records_are_kept_for_their_retention_only(app: Any, session: Any) -> None:
    row = queue(app, session)
    outbox.deliver(session, app_sealer(app), Doubtful())
    session.expire_all()
    closed_at = session.get(Outbox, row.id).closed_at  # type: ignore[union-attr]
    keep = timedelta(days=90)
    outbox.purge(session, now=closed_at + keep - timedelta(seconds=1), keep_records=keep)
    assert session.scalars(select(Outbox.id)).all() == [row.id]
    outbox.purge(session, now=closed_at + keep, keep_records=keep)
    assert session.scalars(select(Outbox.id)).all() == []


def test_codes_and_links_are_set_in_the_monospace_font() -> None:
    line = f"Code : {CODE} ou https://idp.test/o?a=1&b=2 <fin>"
    assert marked_up(line) == (
        f'Code : <font name="Courier-Bold">{CODE}</font> ou '
        '<font name="Courier-Bold">https://idp.test/o?a=1&amp;b=2</font> &lt;fin&gt;'
    )
    assert marked_up("AB-12 ABCD pas un code") == "AB-12 ABCD pas un code"
    assert french_date(datetime(2026, 8, 1, tzinfo=UTC)) == "1 août 2026"


def test_a_long_letter_runs_over_pages() -> None:
    body = "\n".join(f"ligne numéro {n}" for n in range(150)) + f"\nCode : {CODE}"
    pdf = render_letter(
        sender=["Interops"],
        recipient=["DUPONT", "75002 PARIS"],
        subject="Long",
        body=body,
        when=datetime(2026, 12, 3, tzinfo=UTC),
    )
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) >= 3
    text = "\n".join(page.extract_text() for page in pages)
    assert "ligne numéro 149" in text and CODE in text and "Le 3 décembre 2026" in text
    assert "DUPONT" in pages[0].extract_text() and "DUPONT" not in pages[1].extract_text()
