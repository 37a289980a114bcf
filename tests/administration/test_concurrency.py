"""Two administrators removing each other at the same instant leave one administrator
(the company's row is locked while its administrators change: rcd_store.administration.roles).
Meaningful on PostgreSQL (IDP_TEST_DATABASE_URL); on SQLite the writers are serialised
by the database itself and the same must hold."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from rcd_store import administration as adm
from rcd_store.errors import DirectoryError
from tests.administration.support import Directory, two_companies

ROUNDS = 5


def _race(engine: Any, d: Directory, change: Any) -> list[str]:
    """Alice and Élodie (both administrators) each remove the other at once; returns the
    outcome of each ("ok" or the error's class)."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(actor: str, target: str) -> None:
        session = sessionmaker(engine)()
        try:
            barrier.wait(timeout=10)
            change(session, company_id=d.company_a, declarant_id=target, actor=actor)
            session.commit()
            outcomes.append("ok")
        except DirectoryError as exc:
            session.rollback()
            outcomes.append(type(exc).__name__)
        except OperationalError as exc:  # SQLite: "database is locked" for the loser
            session.rollback()
            outcomes.append("database:" + type(exc).__name__)
        finally:
            session.close()

    threads = [
        threading.Thread(target=act, args=(d.admin_a, d.member_a)),
        threading.Thread(target=act, args=(d.member_a, d.admin_a)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_two_administrators_removing_each_other_leave_one(engine: Any, session: Any) -> None:
    d = two_companies(session)
    for change in [adm.remove_admin, adm.remove_declarant, adm.suspend_declarant] * ROUNDS:
        adm.add_admin(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a)
        session.commit()
        outcomes = _race(engine, d, change)
        assert outcomes.count("ok") == 1, outcomes
        session.expire_all()
        remaining = adm.admin_company_ids(session, d.admin_a) | adm.admin_company_ids(
            session, d.member_a
        )
        assert remaining == {d.company_a}
        # put things back for the next round: the survivor re-adds the other as a member
        survivor = d.admin_a if adm.admin_company_ids(session, d.admin_a) else d.member_a
        other = d.member_a if survivor == d.admin_a else d.admin_a
        _restore(session, d, survivor, other)
        d = Directory(d.company_a, d.company_b, survivor, other, d.admin_b, d.member_b)


def _restore(session: Any, d: Directory, survivor: str, other: str) -> None:
    from rcd_store.models import CompanyRole, Declarant, DeclarantStatus, Role

    role = session.query(Role).filter_by(declarant_id=other, company_id=d.company_a).first()
    if role is None:
        session.add(Role(declarant_id=other, company_id=d.company_a, role="MEMBRE"))
    else:
        role.role = CompanyRole.MEMBRE.value
    session.get(Declarant, other).status = DeclarantStatus.ACTIVE.value
    session.commit()


def test_two_companies_inviting_one_address_at_once(app: Any, engine: Any, session: Any) -> None:
    """One invitation is created; the other is a clear Duplicate, not a database error."""
    from idp.stores.sealing import app_sealer

    d = two_companies(session)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def invite(actor: str, company: int) -> None:
        own = sessionmaker(engine)()
        try:
            barrier.wait(timeout=10)
            adm.invite_declarant(
                own,
                company_id=company,
                actor=actor,
                last_name="Double",
                first_name="Dora",
                email="dora@both.example",
                sealer=app_sealer(app),
                base_url="http://idp.test",
            )
            own.commit()
            outcomes.append("ok")
        except DirectoryError as exc:
            own.rollback()
            outcomes.append(type(exc).__name__)
        finally:
            own.close()

    threads = [
        threading.Thread(target=invite, args=(d.admin_a, d.company_a)),
        threading.Thread(target=invite, args=(d.admin_b, d.company_b)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["Duplicate", "ok"]
