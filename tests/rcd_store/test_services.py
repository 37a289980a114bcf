import threading

import pytest
from sqlalchemy import func, select

from rcd_store import services
from rcd_store.db import session_factory
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.models import Habilitation, Role
from tests import factories as f


def test_first_establishment_is_head_office(session) -> None:
    first = f.company(session)
    second = f.company(session, siret=f.SIRET_A2)
    assert first.head_office and not second.head_office
    assert first.company_id == second.company_id
    with pytest.raises(Duplicate):
        f.company(session)


def test_declarant_role_and_email_unique(session) -> None:
    f.company(session)
    person = f.declarant(session, admin=True)
    role = session.scalars(select(Role).where(Role.declarant_id == person.id)).one()
    assert role.role == "ADMINISTRATEUR"
    assert person.id.startswith("D") and len(person.id) == 33
    with pytest.raises(Duplicate):
        f.declarant(session, last="Autre", email="ELODIE@dupont.example")


def test_grant_is_idempotent_and_regrant_after_revoke(session) -> None:
    f.company(session)
    f.service(session)
    person = f.declarant(session)
    first = services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="dsn"
    )
    again = services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    assert first.created and not again.created and first.habilitation_id == again.habilitation_id
    services.revoke_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    assert services.active_habilitations(session, person.id) == []
    with pytest.raises(DirectoryError, match="déjà révoquée"):
        services.revoke_habilitation(
            session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
        )
    regrant = services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    assert regrant.created and regrant.habilitation_id == first.habilitation_id
    assert len(services.active_habilitations(session, person.id)) == 1


def test_grant_needs_a_role_or_a_mandate(session) -> None:
    f.company(session)
    f.company(session, siret=f.SIRET_FIRM, name="Cabinet")
    f.service(session)
    f.service(session, code="ATMP", partner="Assurance Maladie")
    accountant = f.declarant(
        session, siret=f.SIRET_FIRM, last="Lefèvre", first="Claire", email="claire@cabinet.example"
    )
    with pytest.raises(DirectoryError, match="mandat"):
        services.grant_habilitation(
            session, declarant_id=accountant.id, siret=f.SIRET_A, service_code="DSN"
        )
    services.add_mandate(
        session, client_siren=f.SIRET_A[:9], firm_siren=f.SIRET_FIRM[:9], services=["DSN"]
    )
    assert services.grant_habilitation(
        session, declarant_id=accountant.id, siret=f.SIRET_A, service_code="DSN"
    ).created
    with pytest.raises(DirectoryError, match="ATMP"):  # not in the mandate
        services.grant_habilitation(
            session, declarant_id=accountant.id, siret=f.SIRET_A, service_code="ATMP"
        )


def test_unknown_references(session) -> None:
    with pytest.raises(NotFound):
        services.get_declarant(session, "Dnope")
    with pytest.raises(NotFound):
        services.get_service(session, "NOPE")
    with pytest.raises(NotFound):
        services.establishment_by_siret(session, f.SIRET_A)
    with pytest.raises(DirectoryError):
        services.establishment_by_siret(session, "12345678912345")


@pytest.mark.parametrize("bad", ["a@b", "pas une adresse", "a..b@example.org", "@example.org"])
def test_email_syntax(bad: str) -> None:
    with pytest.raises(DirectoryError):
        services.checked_email(bad)


def test_email_reserved_domains_accepted() -> None:
    assert services.checked_email(" x@example.org ") == "x@example.org"
    assert services.checked_email("x@test.example") == "x@test.example"


def test_concurrent_grants_leave_one_row(session, engine) -> None:
    """A unique constraint with ON CONFLICT, not a check-then-insert race."""
    f.company(session)
    f.service(session)
    person = f.declarant(session)
    session.commit()
    factory = session_factory(engine)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def grant() -> None:
        with factory() as s:
            try:
                barrier.wait()
                services.grant_habilitation(
                    s, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
                )
                s.commit()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=grant) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    count = session.scalar(select(func.count()).select_from(Habilitation))
    assert count == 1


def test_check_password_rehashes_when_parameters_change(session) -> None:
    from rcd_store.passwords import HashParameters, PasswordService

    f.company(session)
    person = f.declarant(session)
    old_hash = person.password_hash
    stronger = PasswordService(HashParameters(time_cost=3))
    assert not services.check_password(session, person, "mauvais mot de passe", passwords=stronger)
    assert person.password_hash == old_hash  # a failure changes nothing
    assert services.check_password(session, person, f.PASSWORD, passwords=stronger)
    session.refresh(person)
    assert person.password_hash != old_hash and "t=3" in person.password_hash
    assert services.check_password(session, person, f.PASSWORD, passwords=stronger)
