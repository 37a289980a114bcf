"""Mandates: granted by the client's administrator, used by the mandataire's
administrator within their services, establishments and dates, ended (rights revoked at
once) or expired (refused from the end instant, then swept); with an injected clock."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from rcd_store import services
from rcd_store.administration.access import Forbidden
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.mandates import delegation, lifecycle, rules
from rcd_store.models import AuditEvent, Habilitation, Mandate
from tests import factories as f
from tests.mandates.support import T0, terms, world


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list:
    """The rules' clock, set to T0; append a later instant to move time."""
    moments = [T0]
    monkeypatch.setattr(rules, "clock", lambda: moments[-1])
    return moments


def _granted(session, w, actor=None, firm_siren=f.SIRET_FIRM[:9], **overrides) -> Mandate:
    return delegation.grant(
        session,
        actor=actor or w.client_admin.id,
        company_id=w.client_id,
        firm_siren=firm_siren,
        terms=terms(**overrides),
    )


def _habilitate(session, w, mandate, siret=f.SIRET_A, service="DSN"):
    return delegation.habilitate(
        session,
        actor=w.firm_admin.id,
        company_id=w.firm_id,
        mandate_id=mandate.id,
        declarant_id=w.accountant.id,
        siret=siret,
        service_code=service,
    )


def _rights(session, declarant, now=None) -> set[tuple[str, str]]:
    return {
        (h.establishment.siret, h.service.code)
        for h in services.active_habilitations(session, declarant.id, now=now)
    }


def test_mandataire_habilitates_its_declarant_within_the_mandate(session, clock) -> None:
    w = world(session)
    mandate = _granted(session, w, establishments=[f.SIRET_A])
    assert _habilitate(session, w, mandate).created
    row = session.scalars(select(Habilitation)).one()
    assert row.mandate_id == mandate.id
    assert _rights(session, w.accountant) == {(f.SIRET_A, "DSN")}
    with pytest.raises(Forbidden, match="service"):  # ATMP is not in the mandate
        _habilitate(session, w, mandate, service="ATMP")
    with pytest.raises(Forbidden, match="service sur cet établissement"):  # not listed
        _habilitate(session, w, mandate, siret=f.SIRET_A2)
    with pytest.raises(Forbidden, match="entreprise cliente"):  # the firm's own place
        _habilitate(session, w, mandate, siret=f.SIRET_FIRM)


def test_only_its_own_declarants_and_only_its_administrator(session, clock) -> None:
    w = world(session)
    mandate = _granted(session, w)
    with pytest.raises(Forbidden, match="n'appartient pas"):
        delegation.habilitate(
            session,
            actor=w.firm_admin.id,
            company_id=w.firm_id,
            mandate_id=mandate.id,
            declarant_id=w.client_admin.id,  # the client's person, not the firm's
            siret=f.SIRET_A,
            service_code="DSN",
        )
    with pytest.raises(Forbidden):  # a firm member who is no administrator
        delegation.habilitate(
            session,
            actor=w.accountant.id,
            company_id=w.firm_id,
            mandate_id=mandate.id,
            declarant_id=w.accountant.id,
            siret=f.SIRET_A,
            service_code="DSN",
        )
    with pytest.raises(NotFound):  # the client's administrator cannot use the firm's side
        delegation.find(
            session,
            actor=w.client_admin.id,
            company_id=w.client_id,
            mandate_id=mandate.id,
            side="firm",
        )
    with pytest.raises(Forbidden):  # the firm's administrator cannot grant for the client
        _granted(session, w, actor=w.firm_admin.id)


def test_no_habilitation_before_the_start_or_after_the_end(session, clock) -> None:
    w = world(session)
    mandate = _granted(session, w, starts_at=T0 + timedelta(days=1))
    with pytest.raises(Forbidden, match="pas en cours"):
        _habilitate(session, w, mandate)
    clock.append(T0 + timedelta(days=31))
    with pytest.raises(Forbidden, match="pas en cours"):
        _habilitate(session, w, mandate)


def test_ending_revokes_its_rights_at_once_and_audits(session, clock) -> None:
    w = world(session)
    mandate = _granted(session, w)
    _habilitate(session, w, mandate)
    assert (
        delegation.end(
            session, actor=w.client_admin.id, company_id=w.client_id, mandate_id=mandate.id
        )
        == 1
    )
    row = session.scalars(select(Habilitation)).one()
    assert row.revoked_at == T0 and row.revoked_by == w.client_admin.id
    assert _rights(session, w.accountant) == set()
    kinds = set(session.scalars(select(AuditEvent.kind)))
    assert {"mandate.accepted", "mandate.ended", "habilitation.revoked"} <= kinds
    revoked = session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "habilitation.revoked")
    ).one()
    assert revoked.target == w.accountant.id
    data = json.loads(revoked.data)
    assert [data[k] for k in ("siret", "service", "role")] == [f.SIRET_A, "DSN", "DECLARANT"]
    with pytest.raises(DirectoryError, match="déjà pris fin"):
        delegation.end(
            session, actor=w.client_admin.id, company_id=w.client_id, mandate_id=mandate.id
        )
    # a new mandate between the same two may now be granted
    assert _granted(session, w).id != mandate.id


def test_the_end_date_refuses_rights_from_its_instant_then_the_sweep_revokes(
    session, clock
) -> None:
    w = world(session)
    mandate = _granted(session, w)
    _habilitate(session, w, mandate)
    end = mandate.ends_at
    assert _rights(session, w.accountant, now=end - timedelta(seconds=1)) == {(f.SIRET_A, "DSN")}
    assert _rights(session, w.accountant, now=end) == set()  # before any sweep
    assert session.scalars(select(Habilitation.revoked_at)).one() is None
    assert lifecycle.sweep(session, now=end - timedelta(seconds=1)) == 0
    assert lifecycle.sweep(session, now=end) == 1
    assert session.scalars(select(Habilitation.revoked_at)).one() == end
    assert mandate.ended_at == end and lifecycle.sweep(session, now=end) == 0


def test_the_mandataire_may_renounce(session, clock) -> None:
    w = world(session)
    mandate = _granted(session, w)
    _habilitate(session, w, mandate)
    assert (
        delegation.end(
            session, actor=w.firm_admin.id, company_id=w.firm_id, mandate_id=mandate.id, side="firm"
        )
        == 1
    )


def test_unhabilitate_only_under_that_mandate(session, clock) -> None:
    w = world(session)
    mandate = _granted(session, w)
    _habilitate(session, w, mandate)
    row = session.scalars(select(Habilitation)).one()
    own = services.grant_habilitation(
        session, declarant_id=w.client_admin.id, siret=f.SIRET_A, service_code="DSN"
    )
    with pytest.raises(NotFound):  # the client's own right is not the mandate's
        delegation.unhabilitate(
            session,
            actor=w.firm_admin.id,
            company_id=w.firm_id,
            mandate_id=mandate.id,
            habilitation_id=own.habilitation_id,
        )
    delegation.unhabilitate(
        session,
        actor=w.firm_admin.id,
        company_id=w.firm_id,
        mandate_id=mandate.id,
        habilitation_id=row.id,
    )
    assert _rights(session, w.accountant) == set()


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"services": []}, DirectoryError, "au moins un service"),
        ({"services": ["NOPE"]}, NotFound, "service inconnu"),
        ({"kind": "banque"}, DirectoryError, "nature de mandat"),
        ({"establishments": [f.SIRET_FIRM]}, NotFound, "entreprise cliente"),
        ({"establishments": ["12345678901234"]}, DirectoryError, "SIRET"),
        ({"ends_at": T0}, DirectoryError, "date de fin"),
        ({"services": ["DSN"] * 2 + [f"S{i}" for i in range(60)]}, DirectoryError, "trop"),
    ],
)
def test_bad_terms_change_nothing(session, clock, overrides, error, message) -> None:
    w = world(session)
    with pytest.raises(error, match=message):
        _granted(session, w, **overrides)
    assert session.scalars(select(Mandate)).all() == []


def test_no_second_mandate_in_course_nor_to_oneself(session, clock) -> None:
    w = world(session)
    _granted(session, w)
    with pytest.raises(Duplicate):
        _granted(session, w)
    with pytest.raises(DirectoryError, match="elle-même"):
        _granted(session, w, firm_siren=f.SIRET_A[:9])


def test_lists_are_per_side_and_paged(session, clock) -> None:
    w = world(session)
    mandate = _granted(session, w)
    given = delegation.list_mandates(
        session, actor=w.client_admin.id, company_id=w.client_id, side="client"
    )
    received = delegation.list_mandates(
        session, actor=w.firm_admin.id, company_id=w.firm_id, side="firm"
    )
    assert [m.id for m in given.items] == [m.id for m in received.items] == [mandate.id]
    assert given.items[0].live and given.total == 1
    assert (
        delegation.list_mandates(
            session, actor=w.firm_admin.id, company_id=w.firm_id, side="client"
        ).items
        == []
    )
    with pytest.raises(DirectoryError):
        delegation.list_mandates(
            session, actor=w.firm_admin.id, company_id=w.firm_id, side="firm", per_page=10_000
        )


def test_a_pilot_counts_per_company_of_the_establishment(session, clock) -> None:
    """The pilot is open to the firm, not to its client: the accountant keeps the pilot
    on the firm's own establishment and loses it on the client's."""
    from rcd_store.mandates import pilots

    w = world(session)
    mandate = _granted(session, w)
    _habilitate(session, w, mandate)
    services.grant_habilitation(
        session, declarant_id=w.accountant.id, siret=f.SIRET_FIRM, service_code="DSN"
    )
    assert _rights(session, w.accountant) == {(f.SIRET_A, "DSN"), (f.SIRET_FIRM, "DSN")}
    pilots.open_to(session, code="DSN", siren=f.SIRET_FIRM[:9], actor="t")
    assert _rights(session, w.accountant) == {(f.SIRET_FIRM, "DSN")}
    pilots.open_to(session, code="DSN", siren=f.SIRET_A[:9], actor="t")
    assert _rights(session, w.accountant) == {(f.SIRET_A, "DSN"), (f.SIRET_FIRM, "DSN")}


def test_concurrent_grants_leave_one_mandate_in_course(session, engine) -> None:
    import threading

    from sqlalchemy import func

    from rcd_store.db import session_factory

    w = world(session)
    session.commit()
    factory = session_factory(engine)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def grant() -> None:
        with factory() as s:
            barrier.wait()
            try:
                _granted(s, w, starts_at=None, ends_at=None)
                s.commit()
                outcomes.append("granted")
            except Duplicate:
                s.rollback()
                outcomes.append("duplicate")

    threads = [threading.Thread(target=grant) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 3 + ["granted"]
    assert session.scalar(select(func.count()).select_from(Mandate)) == 1
