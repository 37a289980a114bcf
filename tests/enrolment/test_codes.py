"""rcd_store.enrolment.codes: random enough, hashed, single use, expiring, bound to a
purpose and (when asked) a subject."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from rcd_store.db import utcnow
from rcd_store.enrolment import codes
from rcd_store.enrolment.models import OneTimeCode


def test_a_link_is_stored_hashed_and_used_once(session) -> None:
    link = codes.issue(session, purpose="invitation", subject="D1", lifetime=timedelta(hours=1))
    assert len(link) >= 43  # 256 bits, URL-safe
    row = session.scalars(select(OneTimeCode)).one()
    assert link not in row.secret_hash and row.secret_hash == codes.digest("invitation", link)
    assert codes.peek(session, purpose="invitation", secret=link) == "D1"
    assert codes.peek(session, purpose="invitation", secret=link) == "D1"  # peek uses nothing
    assert codes.redeem(session, purpose="invitation", secret=link) == "D1"
    with pytest.raises(codes.InvalidCode, match="déjà utilisé"):
        codes.redeem(session, purpose="invitation", secret=link)
    with pytest.raises(codes.InvalidCode):
        codes.peek(session, purpose="invitation", secret=link)


def test_a_letter_code_is_typable_and_forgiving(session) -> None:
    code = codes.issue(
        session, purpose="activation", subject="7", lifetime=timedelta(days=30), kind="code"
    )
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4}", code)
    typed = " " + code.replace("-", " ").lower().replace("0", "o").replace("1", "l") + " "
    assert codes.redeem(session, purpose="activation", secret=typed, subject="7") == "7"


def test_codes_are_distinct(session) -> None:
    issued = {
        codes.issue(session, purpose="p", subject="s", lifetime=timedelta(1), kind="code")
        for _ in range(50)
    }
    assert len(issued) == 50


def test_wrong_purpose_or_subject_is_refused_and_leaves_it_unused(session) -> None:
    link = codes.issue(session, purpose="objection", subject="3", lifetime=timedelta(days=1))
    with pytest.raises(codes.InvalidCode):
        codes.redeem(session, purpose="activation", secret=link)
    with pytest.raises(codes.InvalidCode):
        codes.redeem(session, purpose="objection", secret=link, subject="4")
    assert codes.redeem(session, purpose="objection", secret=link, subject="3") == "3"


def test_expired_is_refused_with_its_own_message(session) -> None:
    link = codes.issue(session, purpose="p", subject="s", lifetime=timedelta(minutes=5))
    session.execute(update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(codes.ExpiredCode, match="expiré"):
        codes.peek(session, purpose="p", secret=link)
    with pytest.raises(codes.ExpiredCode):
        codes.redeem(session, purpose="p", secret=link)


@pytest.mark.parametrize("secret", ["", "   ", "x" * 101, "ABCD-EFGH-JKMN-PQRS"])
def test_unknown_or_oversize_is_refused(session, secret: str) -> None:
    with pytest.raises(codes.InvalidCode):
        codes.redeem(session, purpose="p", secret=secret)


def test_void_uses_up_every_live_secret_of_a_subject(session) -> None:
    first = codes.issue(session, purpose="activation", subject="9", lifetime=timedelta(1))
    second = codes.issue(
        session, purpose="activation", subject="9", lifetime=timedelta(1), kind="code"
    )
    other = codes.issue(session, purpose="activation", subject="10", lifetime=timedelta(1))
    assert codes.void(session, purpose="activation", subject="9") == 2
    for secret in (first, second):
        with pytest.raises(codes.InvalidCode):
            codes.redeem(session, purpose="activation", secret=secret)
    assert codes.redeem(session, purpose="activation", secret=other) == "10"


def test_bad_arguments_are_programming_errors(session) -> None:
    with pytest.raises(ValueError, match="kind"):
        codes.issue(session, purpose="p", subject="s", lifetime=timedelta(1), kind="sms")
    with pytest.raises(ValueError, match="lifetime"):
        codes.issue(session, purpose="p", subject="s", lifetime=timedelta(0))


def test_a_concurrent_use_wins_once(app, session, monkeypatch) -> None:
    """Two requests read the same live code; the second UPDATE finds it used (the
    ``WHERE used_at IS NULL`` guard) and is refused."""
    from idp.stores.db import database

    code = codes.issue(session, purpose="activation", subject="5", lifetime=timedelta(1))
    session.commit()
    stale = codes._find(session, "activation", code)  # read before the other use
    other = database(app).sessions()
    try:
        assert codes.redeem(other, purpose="activation", secret=code) == "5"
        other.commit()
    finally:
        other.close()
    monkeypatch.setattr(codes, "_find", lambda *_: stale)
    with pytest.raises(codes.InvalidCode):
        codes.redeem(session, purpose="activation", secret=code)
