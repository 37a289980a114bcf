"""The administration domain (rcd_store.administration): access, lists, invitations,
suspension, removal, administrators and the habilitation matrix. Each refusal changes
nothing (db_snapshot)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from rcd_store import administration as adm
from rcd_store import services
from rcd_store.administration.matrix import Change
from rcd_store.db import utcnow
from rcd_store.enrolment.models import OneTimeCode
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.models import AuditEvent, Declarant, Habilitation, Outbox, Role
from rcd_store.passwords import PasswordService
from tests import factories as f
from tests.administration.support import SIRET_B2, Directory, outbox_link, two_companies

PASSWORDS = PasswordService()


@pytest.fixture
def d(session: Any) -> Directory:
    return two_companies(session)


def _invite(app: Any, session: Any, d: Directory, email: str = "nina@a.example") -> str:
    from idp.stores.sealing import app_sealer

    new_id = adm.invite_declarant(
        session,
        company_id=d.company_a,
        actor=d.admin_a,
        last_name="Nouvelle",
        first_name="Nina",
        email=email,
        sealer=app_sealer(app),
        base_url="http://idp.test",
        address="192.0.2.7",
    )
    session.commit()
    return new_id


def _secret(link: str) -> str:
    return link.split("jeton=", 1)[1]


# ------------------------------------------------------------------ access


def test_admin_company_ids_and_require_admin(session: Any, d: Directory) -> None:
    assert adm.admin_company_ids(session, d.admin_a) == {d.company_a}
    assert adm.admin_company_ids(session, d.member_a) == set()
    assert adm.require_admin(session, actor_id=d.admin_a, company_id=d.company_a).id == d.company_a
    for actor, company in (
        (d.admin_a, d.company_b),
        (d.member_a, d.company_a),
        (d.admin_a, 999_999),
        ("", d.company_a),
    ):
        with pytest.raises(adm.Forbidden) as caught:
            adm.require_admin(session, actor_id=actor, company_id=company)
        assert caught.value.http_status == 403
        assert "n'administrez pas" in caught.value.message


def test_a_suspended_administrator_administers_nothing(session: Any, d: Directory) -> None:
    adm.add_admin(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a)
    adm.suspend_declarant(session, company_id=d.company_a, declarant_id=d.admin_a, actor=d.member_a)
    session.commit()
    assert adm.admin_company_ids(session, d.admin_a) == set()
    with pytest.raises(adm.Forbidden):
        adm.require_admin(session, actor_id=d.admin_a, company_id=d.company_a)


# ------------------------------------------------------------------ lists


def test_establishments_paginated_and_searched(session: Any, d: Directory) -> None:
    everything = adm.list_establishments(session, d.company_a, per_page=1)
    assert (everything.total, everything.pages, everything.has_next) == (2, 2, True)
    assert [e.siret for e in everything.items] == [f.SIRET_A]
    second = adm.list_establishments(session, d.company_a, page=2, per_page=1)
    assert [e.siret for e in second.items] == [f.SIRET_A2] and not second.has_next
    by_siret = adm.list_establishments(session, d.company_a, query="7328 2932 000082")
    assert [e.siret for e in by_siret.items] == [f.SIRET_A2]
    # another company's SIRET is not found through this company
    assert adm.list_establishments(session, d.company_a, query=f.SIRET_B).total == 0
    # LIKE wildcards are literal
    assert adm.list_establishments(session, d.company_a, query="%").total == 0


def test_establishments_searched_by_address(session: Any, d: Directory) -> None:
    services.add_company(
        session, siret="73282932000090", name="Boulangerie Dupont", address="3 rue Haute 69001 Lyon"
    )
    session.commit()
    found = adm.list_establishments(session, d.company_a, query="lyon")
    assert [e.siret for e in found.items] == ["73282932000090"]


def test_declarants_searched_by_name_email_status(session: Any, d: Directory) -> None:
    rows = adm.list_declarants(session, d.company_a)
    assert [(r.last_name, r.role) for r in rows.items] == [
        ("Admin", "ADMINISTRATEUR"),
        ("Dupont", "MEMBRE"),
    ]
    assert [r.id for r in adm.list_declarants(session, d.company_a, query="dup").items] == [
        d.member_a
    ]
    assert [r.id for r in adm.list_declarants(session, d.company_a, query="élo").items] == [
        d.member_a
    ]
    assert [r.id for r in adm.list_declarants(session, d.company_a, query="ALICE@a").items] == [
        d.admin_a
    ]
    assert adm.list_declarants(session, d.company_a, status="pending").total == 0
    assert adm.list_declarants(session, d.company_a, query="martin").total == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "x" * 101}, "recherche trop longue"),
        ({"page": 0}, "numéro de page invalide"),
        ({"per_page": 201}, "taille de page invalide"),
        ({"status": "nimporte"}, "statut inconnu"),
    ],
)
def test_list_bad_input(session: Any, d: Directory, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DirectoryError, match=message):
        adm.list_declarants(session, d.company_a, **kwargs)


# ------------------------------------------------------------------ invitations


def test_invitation_creates_a_pending_member_and_queues_the_link(
    app: Any, session: Any, d: Directory
) -> None:
    new_id = _invite(app, session, d)
    person = session.get(Declarant, new_id)
    assert (person.status, person.password_hash, person.email) == (
        "pending",
        None,
        "nina@a.example",
    )
    role = session.scalars(select(Role).where(Role.declarant_id == new_id)).one()
    assert (role.company_id, role.role) == (d.company_a, "MEMBRE")
    message = session.scalars(select(Outbox).where(Outbox.recipient == "nina@a.example")).one()
    assert message.kind == "invitation" and message.expires_at is not None
    link = outbox_link(app, "nina@a.example")
    assert link.startswith("http://idp.test/invitation?jeton=")
    assert len(_secret(link)) >= 40  # 256 bits, URL-safe
    code = session.scalars(select(OneTimeCode).where(OneTimeCode.subject == new_id)).one()
    assert _secret(link) not in code.secret_hash  # stored hashed
    assert code.expires_at - code.created_at == timedelta(hours=24)
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "admin.declarant_invited")
    ).one()
    assert (event.actor, event.target) == (d.admin_a, new_id)
    assert '"192.0.2.7"' in event.data


@pytest.mark.parametrize(
    ("email", "error", "message"),
    [
        ("elodie@dupont.example", Duplicate, "déjà utilisée par un déclarant"),
        ("ELODIE@dupont.example", Duplicate, "déjà utilisée par un déclarant"),
        ("nina@a.example", Duplicate, "invitation est déjà en cours"),
        ("pas-une-adresse", DirectoryError, "adresse électronique invalide"),
        ("n" * 250 + "@a.example", DirectoryError, "trop longue"),
    ],
)
def test_bad_invitations_change_nothing(
    app: Any, session: Any, d: Directory, db_snapshot: Any, email: str, error: Any, message: str
) -> None:
    _invite(app, session, d)
    before = db_snapshot()
    with pytest.raises(error, match=message):
        _invite(app, session, d, email)
    session.rollback()
    assert db_snapshot() == before


def test_oversize_name_and_foreign_company_refused(
    app: Any, session: Any, d: Directory, db_snapshot: Any
) -> None:
    from idp.stores.sealing import app_sealer

    before = db_snapshot()
    common: dict[str, Any] = {
        "sealer": app_sealer(app),
        "base_url": "http://idp.test",
        "email": "x@a.example",
    }
    with pytest.raises(DirectoryError, match="trop long"):
        adm.invite_declarant(
            session,
            company_id=d.company_a,
            actor=d.admin_a,
            last_name="N" * 101,
            first_name="Nina",
            **common,
        )
    session.rollback()
    with pytest.raises(adm.Forbidden):
        adm.invite_declarant(
            session,
            company_id=d.company_b,
            actor=d.admin_a,
            last_name="Nouvelle",
            first_name="Nina",
            **common,
        )
    session.rollback()
    assert db_snapshot() == before


def test_accepting_sets_the_password_once(app: Any, session: Any, d: Directory) -> None:
    new_id = _invite(app, session, d)
    secret = _secret(outbox_link(app, "nina@a.example"))
    shown = adm.invitation_for(session, secret)
    assert (shown.declarant_id, shown.company) == (new_id, "Boulangerie Dupont")
    with pytest.raises(DirectoryError, match="trop court"):
        adm.accept_invitation(session, secret=secret, password="court", passwords=PASSWORDS)
    session.rollback()
    adm.accept_invitation(session, secret=secret, password=f.PASSWORD, passwords=PASSWORDS)
    session.commit()
    person = session.get(Declarant, new_id)
    assert person.status == "active" and person.email_verified
    assert services.check_password(session, person, f.PASSWORD, passwords=PASSWORDS)
    with pytest.raises(DirectoryError, match="pas valable"):
        adm.accept_invitation(session, secret=secret, password=f.PASSWORD, passwords=PASSWORDS)


def test_expired_invitation_refused(app: Any, session: Any, d: Directory, db_snapshot: Any) -> None:
    _invite(app, session, d)
    secret = _secret(outbox_link(app, "nina@a.example"))
    session.execute(update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    before = db_snapshot()
    with pytest.raises(DirectoryError, match="expiré"):
        adm.accept_invitation(session, secret=secret, password=f.PASSWORD, passwords=PASSWORDS)
    session.rollback()
    assert db_snapshot() == before


def test_removing_an_invitee_withdraws_the_invitation(app: Any, session: Any, d: Directory) -> None:
    new_id = _invite(app, session, d)
    secret = _secret(outbox_link(app, "nina@a.example"))
    adm.remove_declarant(session, company_id=d.company_a, declarant_id=new_id, actor=d.admin_a)
    session.commit()
    assert session.get(Declarant, new_id) is None
    with pytest.raises(DirectoryError, match="pas valable"):
        adm.invitation_for(session, secret)
    _invite(app, session, d)  # the address is free again


# ------------------------------------------------------------------ members


def test_suspended_declarant_cannot_log_in_nor_be_asserted(
    app: Any, session: Any, d: Directory
) -> None:
    from idp.auth.asserted import NotAssertable, acting
    from idp.auth.login import by_email

    adm.suspend_declarant(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a)
    session.commit()
    person = session.get(Declarant, d.member_a)
    assert person.status == "disabled"
    assert by_email(session, "elodie@dupont.example").candidates == []
    with app.test_request_context(), pytest.raises(NotAssertable):
        acting(person)
    adm.reactivate_declarant(
        session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a
    )
    session.commit()
    assert by_email(session, "elodie@dupont.example").candidates == [person]


@pytest.mark.parametrize(
    ("change", "target", "message"),
    [
        (adm.suspend_declarant, "admin", "vous-même"),
        (adm.remove_declarant, "admin", "vous-même"),
        (adm.reactivate_declarant, "member", "pas suspendu"),
        (adm.suspend_declarant, "other", "déclarant inconnu dans cette entreprise"),
        (adm.remove_declarant, "other", "déclarant inconnu dans cette entreprise"),
        (adm.add_admin, "admin", "déjà administrateur"),
        (adm.remove_admin, "admin", "au moins un administrateur"),
        (adm.remove_admin, "member", "n'est pas administrateur"),
        (adm.hand_over, "admin", "vous-même"),
        (adm.add_admin, "unknown", "déclarant inconnu"),
    ],
)
def test_refused_member_changes_change_nothing(
    session: Any, d: Directory, db_snapshot: Any, change: Any, target: str, message: str
) -> None:
    ids = {"admin": d.admin_a, "member": d.member_a, "other": d.member_b, "unknown": "D00"}
    before = db_snapshot()
    with pytest.raises(DirectoryError, match=message):
        change(session, company_id=d.company_a, declarant_id=ids[target], actor=d.admin_a)
    session.rollback()
    assert db_snapshot() == before


def test_no_change_by_another_company_s_administrator(
    session: Any, d: Directory, db_snapshot: Any
) -> None:
    before = db_snapshot()
    for change in (adm.suspend_declarant, adm.remove_declarant, adm.add_admin, adm.hand_over):
        with pytest.raises(adm.Forbidden):
            change(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_b)
        session.rollback()
    assert db_snapshot() == before


def test_removal_revokes_the_company_s_habilitations(session: Any, d: Directory) -> None:
    services.grant_habilitation(
        session, declarant_id=d.member_a, siret=f.SIRET_A, service_code="DSN"
    )
    session.commit()
    adm.remove_declarant(
        session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a, address="::1"
    )
    session.commit()
    assert services.active_habilitations(session, d.member_a) == []
    assert session.scalars(select(Role).where(Role.declarant_id == d.member_a)).all() == []
    row = session.scalars(select(Habilitation)).one()
    assert row.revoked_by == d.admin_a
    # audited right by right, as any revocation (what partners' security events follow)
    revoked = session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "habilitation.revoked")
    ).all()
    assert [(e.target, json.loads(e.data)["service"]) for e in revoked] == [(d.member_a, "DSN")]


def test_administrators_added_handed_over_and_kept(session: Any, d: Directory) -> None:
    adm.hand_over(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a)
    session.commit()
    assert adm.admin_company_ids(session, d.member_a) == {d.company_a}
    assert adm.admin_company_ids(session, d.admin_a) == set()
    adm.add_admin(session, company_id=d.company_a, declarant_id=d.admin_a, actor=d.member_a)
    adm.remove_admin(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.member_a)
    session.commit()
    assert adm.admin_company_ids(session, d.admin_a) == {d.company_a}
    with pytest.raises(DirectoryError, match="au moins un administrateur"):
        adm.remove_admin(session, company_id=d.company_a, declarant_id=d.admin_a, actor=d.admin_a)


def test_suspending_the_last_active_administrator_refused(session: Any, d: Directory) -> None:
    adm.add_admin(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a)
    adm.suspend_declarant(session, company_id=d.company_a, declarant_id=d.member_a, actor=d.admin_a)
    session.commit()
    # Élodie is an administrator but suspended: Alice is the last active one
    with pytest.raises(DirectoryError):
        adm.remove_admin(session, company_id=d.company_a, declarant_id=d.admin_a, actor=d.admin_a)


# ------------------------------------------------------------------ matrix


def test_matrix_shows_and_sets_rights(session: Any, d: Directory) -> None:
    services.grant_habilitation(
        session, declarant_id=d.member_a, siret=f.SIRET_A, service_code="DSN"
    )
    session.commit()
    matrix = adm.declarant_matrix(session, d.company_a, declarant_id=d.member_a)
    assert [(c.code, c.role) for c in matrix.columns] == [
        ("ATMP", "DECLARANT"),
        ("DSN", "CONSULTATION"),
        ("DSN", "DECLARANT"),
    ]
    first = matrix.rows.items[0]
    assert [matrix.has(first.id, c) for c in matrix.columns] == [False, False, True]
    changed = adm.set_habilitations(
        session,
        company_id=d.company_a,
        actor=d.admin_a,
        declarant_id=d.member_a,
        changes=[
            Change(f.SIRET_A, "DSN", "DECLARANT", False),
            Change(f.SIRET_A2, "ATMP", "DECLARANT", True),
            Change(f.SIRET_A2, "DSN", "CONSULTATION", False),  # already absent
        ],
        address="192.0.2.9",
    )
    session.commit()
    assert changed == 2
    held = {
        (h.establishment.siret, h.service.code)
        for h in services.active_habilitations(session, d.member_a)
    }
    assert held == {(f.SIRET_A2, "ATMP")}
    place, by_place = adm.establishment_matrix(
        session, d.company_a, establishment_id=matrix.rows.items[1].id
    )
    assert place.siret == f.SIRET_A2
    atmp = by_place.columns[0]
    assert [by_place.has(r.id, atmp) for r in by_place.rows.items] == [False, True]


@pytest.mark.parametrize(
    ("changes", "declarant", "error", "message"),
    [
        ([Change(f.SIRET_B, "DSN", "DECLARANT", True)], "member", NotFound, "établissement"),
        ([Change(SIRET_B2, "DSN", "DECLARANT", True)], "member", NotFound, "établissement"),
        ([Change(f.SIRET_A, "NOPE", "DECLARANT", True)], "member", DirectoryError, "inconnu"),
        ([Change(f.SIRET_A, "ATMP", "CONSULTATION", True)], "member", DirectoryError, "inconnu"),
        ([Change(f.SIRET_A, "DSN", "DECLARANT", True)], "other", NotFound, "déclarant"),
        (
            [
                Change(f.SIRET_A, "DSN", "DECLARANT", True),
                Change(f.SIRET_B, "DSN", "DECLARANT", True),
            ],
            "member",
            NotFound,
            "établissement",
        ),
    ],
)
def test_bad_matrix_changes_change_nothing(
    session: Any,
    d: Directory,
    db_snapshot: Any,
    changes: list[Change],
    declarant: str,
    error: Any,
    message: str,
) -> None:
    target = d.member_a if declarant == "member" else d.member_b
    before = db_snapshot()
    with pytest.raises(error, match=message):
        adm.set_habilitations(
            session, company_id=d.company_a, actor=d.admin_a, declarant_id=target, changes=changes
        )
    session.rollback()
    assert db_snapshot() == before


def test_matrix_of_another_company_s_establishment_refused(session: Any, d: Directory) -> None:
    other = adm.list_establishments(session, d.company_b).items[0].id
    with pytest.raises(NotFound):
        adm.establishment_matrix(session, d.company_a, establishment_id=other)
    with pytest.raises(NotFound):
        adm.declarant_matrix(session, d.company_a, declarant_id=d.member_b)


def test_a_pilot_service_is_a_column_only_where_it_is_open(session: Any, d: Directory) -> None:
    from rcd_store.mandates import pilots

    pilots.open_to(session, code="ATMP", siren=f.SIRET_B[:9], actor=None)
    session.commit()
    codes_a = {
        c.code for c in adm.declarant_matrix(session, d.company_a, declarant_id=d.member_a).columns
    }
    codes_b = {
        c.code for c in adm.declarant_matrix(session, d.company_b, declarant_id=d.member_b).columns
    }
    assert (codes_a, codes_b) == ({"DSN"}, {"DSN", "ATMP"})
    with pytest.raises(DirectoryError, match="service ou rôle inconnu"):
        adm.set_habilitations(
            session,
            company_id=d.company_a,
            actor=d.admin_a,
            declarant_id=d.member_a,
            changes=[Change(f.SIRET_A, "ATMP", "DECLARANT", True)],
        )
