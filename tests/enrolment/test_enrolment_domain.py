"""Enrolment of a company, objection and join requests, in the directory alone."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from rcd_store import services
from rcd_store.administration.access import Forbidden
from rcd_store.db import utcnow
from rcd_store.enrolment import codes, enrol, joins, objection, verification
from rcd_store.enrolment.models import Enrolment, JoinRequest
from rcd_store.enrolment.people import FormRefused, Identity
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.identifiers import InvalidIdentifier
from rcd_store.models import AuditEvent, Declarant, Habilitation, Role
from tests.enrolment import support as s


def _roles(session, declarant_id):
    return {r.role for r in session.scalars(select(Role).where(Role.declarant_id == declarant_id))}


def _candidate(session):
    s.company(session)
    pending = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    letter = verification.verify_email(session, secret=pending.secret)
    assert isinstance(letter, enrol.Letter)
    session.commit()
    return pending.declarant, letter


def _admin(session):
    candidate, letter = _candidate(session)
    enrol.activate(session, declarant_id=candidate.id, code=letter.activation_code)
    session.commit()
    return candidate, letter


def test_enrolment_makes_a_pending_account_then_a_candidate_with_a_letter(session) -> None:
    s.company(session)
    pending = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    person = pending.declarant
    assert person.status == "pending" and not person.email_verified
    assert person.password_hash.startswith("$argon2id$")
    assert _roles(session, person.id) == set()
    assert verification.check(session, secret=pending.secret) == "enrolment"
    letter = verification.verify_email(session, secret=pending.secret)
    assert person.status == "active" and person.email_verified
    assert _roles(session, person.id) == {"CANDIDAT_AD"}
    assert letter.recipient == "Élodie Dupont\nBoulangerie Dupont\n3 rue des Lilas 75011 Paris"
    assert len({letter.activation_code, letter.objection_code, letter.objection_link}) == 3
    with pytest.raises(codes.InvalidCode):  # the link is single use
        verification.verify_email(session, secret=pending.secret)
    kinds = set(session.scalars(select(AuditEvent.kind)))
    assert {"enrolment.started", "enrolment.candidate"} <= kinds
    assert not any("Camille" in e.data for e in session.scalars(select(AuditEvent)))


def test_the_activation_code_makes_the_candidate_administrator_once(session) -> None:
    candidate, letter = _candidate(session)
    company = enrol.activate(session, declarant_id=candidate.id, code=letter.activation_code)
    assert company.siren == s.SIRET[:9]
    assert _roles(session, candidate.id) == {"ADMINISTRATEUR"}
    with pytest.raises(DirectoryError, match="aucune inscription"):
        enrol.activate(session, declarant_id=candidate.id, code=letter.activation_code)


def test_an_activation_code_is_the_candidates_own(session) -> None:
    candidate, letter = _candidate(session)
    intruder = s.person(session, s.SIRET_ELSEWHERE, "Jean", "Faux", "jean@autre.example")
    with pytest.raises(DirectoryError):
        enrol.activate(session, declarant_id=intruder.id, code=letter.activation_code)
    with pytest.raises(codes.InvalidCode):
        enrol.activate(session, declarant_id=candidate.id, code="ABCD-EFGH-JKMN-PQRS")


def test_an_administrator_co_opts_a_candidate(session) -> None:
    s.company(session)
    admin = s.person(session, s.SIRET, "Élodie", "Dupont", "elodie@dupont.example", admin=True)
    # an enrolment still under way cannot be started while an administrator exists
    with pytest.raises(FormRefused, match="déjà inscrite"):
        enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    session.execute(update(Role).where(Role.declarant_id == admin.id).values(role="MEMBRE"))
    pending = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    letter = verification.verify_email(session, secret=pending.secret)
    session.execute(update(Role).where(Role.declarant_id == admin.id).values(role="ADMINISTRATEUR"))
    with pytest.raises(Forbidden):
        enrol.co_opt(
            session, company_id=letter.company.id, candidate_id=admin.id, actor=pending.declarant.id
        )
    assert [d.id for _, d in enrol.candidates(session, letter.company.id)] == [pending.declarant.id]
    enrol.co_opt(
        session, company_id=letter.company.id, candidate_id=pending.declarant.id, actor=admin.id
    )
    assert _roles(session, pending.declarant.id) == {"ADMINISTRATEUR"}
    with pytest.raises(codes.InvalidCode):  # the activation code died with the co-optation
        codes.redeem(session, purpose=enrol.ACTIVATION, secret=letter.activation_code)


@pytest.mark.parametrize(
    ("siret", "error", "message"),
    [
        ("7328293200007", InvalidIdentifier, "14 chiffres"),
        ("73282932000075", InvalidIdentifier, "clé de contrôle"),
        (s.SIRET_UNKNOWN, NotFound, "aucun établissement ni donnée SIRENE"),
    ],
)
def test_a_bad_siret_is_refused(session, siret, error, message) -> None:
    s.company(session)
    with pytest.raises(FormRefused, match=message) as refused:
        enrol.start_enrolment(session, siret=siret, who=s.CANDIDATE, passwords=s.passwords)
    assert set(refused.value.errors) == {"siret"}
    assert isinstance(refused.value.first, error)


def test_every_bad_field_is_reported_at_once(session) -> None:
    s.company(session)
    s.person(session, s.SIRET_ELSEWHERE, "Déjà", "Pris", "pris@autre.example")
    who = Identity("", "X" * 300, "PRIS@autre.example", "court")
    with pytest.raises(FormRefused) as refused:
        enrol.start_enrolment(session, siret="123", who=who, passwords=s.passwords)
    assert set(refused.value.errors) == {"siret", "nom", "prenom", "courriel", "mot_de_passe"}
    assert isinstance(refused.value.errors["courriel"], Duplicate)


def test_la_poste_establishments_follow_their_rule(session) -> None:
    with pytest.raises(FormRefused) as refused:  # valid under La Poste's rule: then looked up
        enrol.start_enrolment(
            session, siret="35600000000015", who=s.CANDIDATE, passwords=s.passwords
        )
    assert isinstance(refused.value.first, NotFound)


def test_a_second_enrolment_under_way_is_refused(session) -> None:
    _candidate(session)
    with pytest.raises(FormRefused, match="déjà en cours"):
        enrol.start_enrolment(session, siret=s.SIRET, who=s.JOINER, passwords=s.passwords)


def test_an_email_in_use_is_refused_until_a_stale_pending_account_expires(session) -> None:
    s.company(session)
    first = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    first_id = first.declarant.id
    session.commit()
    with pytest.raises(FormRefused):
        enrol.start_enrolment(
            session, siret=s.SIRET_ELSEWHERE, who=s.CANDIDATE, passwords=s.passwords
        )
    session.rollback()
    stale = utcnow() - timedelta(hours=25)
    session.execute(update(Declarant).values(created_at=stale))
    session.execute(update(Enrolment).values(created_at=stale))
    again = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    assert again.declarant.id != first_id
    assert session.get(Declarant, first_id) is None
    with pytest.raises(codes.InvalidCode):  # the old link verifies nothing any more
        verification.verify_email(session, secret=first.secret)


def test_an_expired_verification_link_is_refused(session) -> None:
    s.company(session)
    pending = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    from rcd_store.enrolment.models import OneTimeCode

    session.execute(update(OneTimeCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(codes.ExpiredCode):
        verification.verify_email(session, secret=pending.secret)


def test_a_company_without_postal_address_gets_no_letter(session) -> None:
    services.add_company(session, siret=s.SIRET, name="Sans Adresse")
    pending = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    with pytest.raises(DirectoryError, match="adresse postale inconnue"):
        verification.verify_email(session, secret=pending.secret)


def test_the_objection_refuses_the_candidate(session) -> None:
    candidate, letter = _candidate(session)
    seen = objection.view(session, secret=letter.objection_link)
    assert seen.person == "Camille Martin" and seen.status == "candidate"
    objection.object_to(session, secret=letter.objection_code)
    assert _roles(session, candidate.id) == set()
    assert candidate.status == "disabled"
    for secret, purpose in (
        (letter.activation_code, enrol.ACTIVATION),
        (letter.objection_link, enrol.OBJECTION),
    ):
        with pytest.raises(codes.InvalidCode):
            codes.redeem(session, purpose=purpose, secret=secret)
    assert "enrolment.refused" in set(session.scalars(select(AuditEvent.kind)))
    # the company is open to a new enrolment
    enrol.start_enrolment(session, siret=s.SIRET, who=s.JOINER, passwords=s.passwords)


def test_the_objection_removes_an_unwanted_administrator_even_the_only_one(session) -> None:
    admin, letter = _admin(session)
    services.grant_habilitation(session, declarant_id=admin.id, siret=s.SIRET, service_code="DSN")
    objection.object_to(session, secret=letter.objection_link)
    assert _roles(session, admin.id) == set()
    assert services.active_habilitations(session, admin.id) == []
    assert session.scalars(select(Habilitation.revoked_by)).one() == "objection"
    assert "enrolment.administrator_removed" in set(session.scalars(select(AuditEvent.kind)))
    with pytest.raises(codes.InvalidCode):
        objection.view(session, secret=letter.objection_code)


def test_join_request_accepted_with_habilitations(session) -> None:
    admin, letter = _admin(session)
    pending = joins.request_join(
        session, siret=s.SIRET_OTHER_ESTABLISHMENT, who=s.JOINER, passwords=s.passwords
    )
    assert joins.pending_joins(session, letter.company.id) == []  # email not verified yet
    assert verification.check(session, secret=pending.secret) == "join"
    verification.verify_email(session, secret=pending.secret)
    [seen] = joins.pending_joins(session, letter.company.id)
    assert (seen.first_name, seen.siret) == ("Louis", s.SIRET_OTHER_ESTABLISHMENT)
    decided = joins.accept_join(
        session,
        request_id=seen.id,
        actor=admin.id,
        habilitations=[
            (s.SIRET, "DSN", "DECLARANT"),
            (s.SIRET_OTHER_ESTABLISHMENT, "DSN", "CONSULTATION"),
        ],
    )
    assert decided.accepted and decided.email == s.JOINER.email
    person = pending.declarant
    assert person.status == "active" and _roles(session, person.id) == {"MEMBRE"}
    got = {
        (h.establishment.siret, h.role) for h in services.active_habilitations(session, person.id)
    }
    assert got == {(s.SIRET, "DECLARANT"), (s.SIRET_OTHER_ESTABLISHMENT, "CONSULTATION")}
    with pytest.raises(DirectoryError, match="déjà été traitée"):
        joins.refuse_join(session, request_id=seen.id, actor=admin.id)


def test_join_request_refused_purges_the_account(session) -> None:
    admin, _letter = _admin(session)
    pending = joins.request_join(session, siret=s.SIRET, who=s.JOINER, passwords=s.passwords)
    verification.verify_email(session, secret=pending.secret)
    decided = joins.refuse_join(session, request_id=pending.request_id, actor=admin.id)
    assert not decided.accepted and decided.first_name == "Louis"
    assert session.get(Declarant, pending.declarant.id) is None
    request = session.get(JoinRequest, pending.request_id)
    assert request.status == "refused" and request.declarant_id is None


def test_join_decisions_belong_to_the_companys_administrators(session) -> None:
    admin, _letter = _admin(session)
    outsider = s.person(
        session, s.SIRET_ELSEWHERE, "Admin", "Autre", "admin@autre.example", admin=True
    )
    pending = joins.request_join(session, siret=s.SIRET, who=s.JOINER, passwords=s.passwords)
    verification.verify_email(session, secret=pending.secret)
    with pytest.raises(Forbidden):
        joins.accept_join(
            session, request_id=pending.request_id, actor=outsider.id, habilitations=[]
        )
    with pytest.raises(Forbidden):
        joins.refuse_join(session, request_id=pending.request_id, actor=outsider.id)
    with pytest.raises(DirectoryError, match="pas de votre entreprise"):
        joins.accept_join(
            session,
            request_id=pending.request_id,
            actor=admin.id,
            habilitations=[(s.SIRET_ELSEWHERE, "DSN", "DECLARANT")],
        )


def test_joining_a_company_not_enrolled_is_refused(session) -> None:
    s.company(session)
    with pytest.raises(FormRefused, match="pas encore inscrite"):
        joins.request_join(session, siret=s.SIRET, who=s.JOINER, passwords=s.passwords)


def test_a_candidacy_whose_letter_expired_makes_way_for_a_new_enrolment(session) -> None:
    first, letter = _candidate(session)
    with pytest.raises(FormRefused, match="déjà en cours"):
        enrol.start_enrolment(session, siret=s.SIRET, who=s.JOINER, passwords=s.passwords)
    session.rollback()
    session.execute(update(Enrolment).values(created_at=utcnow() - enrol.CANDIDACY))
    pending = enrol.start_enrolment(session, siret=s.SIRET, who=s.JOINER, passwords=s.passwords)
    verification.verify_email(session, secret=pending.secret)
    assert _roles(session, first.id) == set()
    assert _roles(session, pending.declarant.id) == {"CANDIDAT_AD"}
    assert session.get(Enrolment, letter.enrolment_id).status == "expired"


def test_changes_are_audited_with_the_client_address(session) -> None:
    from rcd_store.enrolment.people import CLIENT_ADDRESS

    session.info[CLIENT_ADDRESS] = "203.0.113.7"
    _candidate(session)
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.kind.like("enrolment.%"))))
    assert [e.kind for e in events] == ["enrolment.started", "enrolment.candidate"]
    assert {json.loads(e.data)["address"] for e in events} == {"203.0.113.7"}


def test_an_establishment_known_from_sirene_data_can_be_enrolled(session) -> None:
    import io

    from rcd_store import sirene

    stream = io.BytesIO(
        b"siren,nic,siret,etablissementSiege,etatAdministratifEtablissement,"
        b"numeroVoieEtablissement,typeVoieEtablissement,libelleVoieEtablissement,"
        b"codePostalEtablissement,libelleCommuneEtablissement\n"
        b"732829320,00074,73282932000074,true,A,12,RUE,DE LA PAIX,75002,PARIS\n"
        b"732829320,00082,73282932000082,false,F,,,,,\n"
    )
    assert sirene.import_etablissements(session, stream).imported == 2
    pending = enrol.start_enrolment(session, siret=s.SIRET, who=s.CANDIDATE, passwords=s.passwords)
    letter = verification.verify_email(session, secret=pending.secret)
    assert isinstance(letter, enrol.Letter)
    assert letter.recipient.endswith("12 RUE DE LA PAIX, 75002 PARIS")
    assert letter.recipient.startswith("Représentant légal\n")
    with pytest.raises(FormRefused, match="fermé"):  # a closed establishment
        joins.request_join(
            session, siret=s.SIRET_OTHER_ESTABLISHMENT, who=s.JOINER, passwords=s.passwords
        )
