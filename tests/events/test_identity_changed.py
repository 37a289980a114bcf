"""The "identity changed" SET: a declarant correcting their names or changing their
email address from the profile page (the address only once verified), an administrator
correcting a member's names, the operator's ``idp declarant edit``. Each change reaches
a partner's real HTTP receiver as a verified SET of that kind, naming the changed claims
(never their values), and only the partners sharing a service with the declarant; bad
input changes nothing and tells no one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from idp.events.push import push_round
from rcd_store.enrolment.models import OneTimeCode
from rcd_store.models import AuditEvent, Declarant
from tests.conftest import snapshot
from tests.events.support import Receiver, our_trust, two_partners
from tests.idp.login_support import csrf
from tests.idp.portal_support import log_in
from tests.outbox_support import emails
from token_suite import events

#: this helper's ports
PORTS = range(8500, 8600)
LINK = re.compile(r"http://idp\.test(/profil/courriel/confirmer\?jeton=[\w-]+&adresse=[\w-]+)")
#: tables a refused request may still write: rate-limit counters, the session's last use
VOLATILE = ("login_throttle", "sso_session")


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    urssaf, other = Receiver(PORTS), Receiver(PORTS)
    yield urssaf, other
    urssaf.down()
    other.down()


@pytest.fixture
def world(app: Any, session: Any, receivers: tuple[Receiver, Receiver]) -> dict[str, str]:
    return two_partners(app, session, *receivers)


@pytest.fixture
def elodie(app: Any, world: dict[str, str]) -> Any:
    """A browser logged in as Élodie (granted DSN: URSSAF hears of her, AUTRE does not)."""
    client = app.test_client()
    log_in(app, client, world["elodie"])
    return client


def _told(app: Any, receiver: Receiver, audience: str) -> list[events.SecurityEvent]:
    """Push what waits, then every SET the receiver got, verified as a partner would."""
    push_round(app)
    trust = our_trust(app)
    return [events.verify(t, trust=trust, audience=audience) for t in receiver.tokens()]


def _identity(app: Any, receiver: Receiver, audience: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e.subject, e.payload)
        for e in _told(app, receiver, audience)
        if e.kind == "identity-changed"
    ]


def _post(client: Any, path: str, data: dict[str, str], page: str = "/profil") -> Any:
    return client.post(path, data={"csrf_token": csrf(client, page), **data})


def _rows(engine: Any) -> dict[str, Any]:
    rows = snapshot(engine)
    for name in VOLATILE:
        rows.pop(name, None)
    return rows


def _person(session: Any, declarant_id: str) -> Declarant:
    session.expire_all()
    found = session.get(Declarant, declarant_id)
    assert found is not None
    return found


def test_renaming_oneself_reaches_the_sharing_partner_only(
    app: Any, session: Any, world: dict[str, str], receivers: Any, elodie: Any
) -> None:
    urssaf, other = receivers
    page = elodie.get("/profil").get_data(as_text=True)
    assert '<label for="nom">Nom</label>' in page and 'value="Dupont"' in page
    done = _post(elodie, "/profil/identite", {"nom": "Dupont-Martin", "prenom": "Élodie"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/profil?fait=identite")
    shown = elodie.get(done.headers["Location"]).get_data(as_text=True)
    assert "Votre identité est enregistrée." in shown and 'value="Dupont-Martin"' in shown
    person = _person(session, world["elodie"])
    assert (person.last_name, person.last_name_key) == ("Dupont-Martin", "dupontmartin")
    assert _identity(app, urssaf, world["URSSAF"]) == [
        (world["elodie"], {"fields": ["family_name"]})
    ]
    assert [e.subject for e in _told(app, other, world["AUTRE"])] == [world["marc"]]
    # the same names again: nothing changes, nobody is told
    _post(elodie, "/profil/identite", {"nom": "Dupont-Martin", "prenom": "Élodie"})
    assert len(_identity(app, urssaf, world["URSSAF"])) == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"nom": "", "prenom": "Élodie"}, "nom manquant"),
        ({"nom": "Dupont", "prenom": "   "}, "prénom manquant"),
        ({"nom": "Du\x00pont", "prenom": "Élodie"}, "caractère non imprimable"),
        ({"nom": "D" * 101, "prenom": "Élodie"}, "Trop long : 100 caractères au plus."),
    ],
    ids=["no-last-name", "blank-first-name", "control-character", "too-long"],
)
def test_bad_names_change_nothing(
    app: Any,
    engine: Any,
    world: dict[str, str],
    receivers: Any,
    elodie: Any,
    form: dict[str, str],
    message: str,
) -> None:
    elodie.get("/profil")
    before = _rows(engine)
    refused = _post(elodie, "/profil/identite", form)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "Rien n&#39;est modifié" in text and message in text
    assert 'aria-invalid="true"' in text
    assert _rows(engine) == before
    assert _identity(app, receivers[0], world["URSSAF"]) == []


def test_a_form_without_its_csrf_token_is_refused(
    app: Any, engine: Any, session: Any, world: dict[str, str], elodie: Any
) -> None:
    elodie.get("/profil")
    before = _rows(engine)
    refused = elodie.post("/profil/identite", data={"nom": "Pirate", "prenom": "Élodie"})
    assert refused.status_code in (400, 403)
    assert _rows(engine) == before
    assert _person(session, world["elodie"]).last_name == "Dupont"


def test_the_profile_needs_a_login(app: Any, world: dict[str, str]) -> None:
    client = app.test_client()
    response = client.get("/profil")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


def _confirmation_path(app: Any, to: str) -> str:
    mails = [m for m in emails(app) if m.recipient == to]
    assert mails, f"no email to {to}"
    found = LINK.search(mails[-1].text)
    assert found, mails[-1].text
    return found.group(1)


def _ask_new_address(client: Any, email: str, password: str | None = None) -> Any:
    from tests.factories import PASSWORD

    return _post(
        client, "/profil/courriel", {"courriel": email, "mot_de_passe": password or PASSWORD}
    )


def _confirm(client: Any, path: str) -> Any:
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
    return _post(client, "/profil/courriel/confirmer", query, page="/connexion?force=1")


def test_a_new_address_takes_effect_once_verified_and_is_told(
    app: Any, session: Any, world: dict[str, str], receivers: Any, elodie: Any
) -> None:
    urssaf, _other = receivers
    asked = _ask_new_address(elodie, "elodie.dupont@nouvelle.example")
    assert asked.status_code == 303, asked.get_data(as_text=True)
    assert "Un lien de confirmation est envoyé" in elodie.get(asked.headers["Location"]).get_data(
        as_text=True
    )
    assert _person(session, world["elodie"]).email == "elodie@dupont.example"  # not yet
    assert _identity(app, urssaf, world["URSSAF"]) == []
    notice = [m for m in emails(app) if m.recipient == "elodie@dupont.example"]
    assert notice and "ne prendra effet que si la nouvelle adresse est confirmée" in notice[-1].text
    path = _confirmation_path(app, "elodie.dupont@nouvelle.example")
    assert "nouvelle.example" not in path  # the address travels sealed, never in clear
    anyone = app.test_client()  # the link works in any browser; opening it uses nothing
    shown = anyone.get(path).get_data(as_text=True)
    assert "Confirmez que elodie.dupont@nouvelle.example devient" in shown
    assert _person(session, world["elodie"]).email == "elodie@dupont.example"
    done = _confirm(anyone, path)
    assert done.status_code == 200 and 'id="adresse-changee"' in done.get_data(as_text=True)
    person = _person(session, world["elodie"])
    assert (person.email, person.email_key, person.email_verified) == (
        "elodie.dupont@nouvelle.example",
        "elodie.dupont@nouvelle.example",
        True,
    )
    assert _identity(app, urssaf, world["URSSAF"]) == [(world["elodie"], {"fields": ["email"]})]
    assert all(e.subject == world["marc"] for e in _told(app, receivers[1], world["AUTRE"]))
    again = _confirm(anyone, path)  # once only
    assert again.status_code == 400 and "pas valable" in again.get_data(as_text=True)
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "declarant.identity_changed")
    ).all()
    assert [json.loads(e.data or "{}")["fields"] for e in audited] == [["email"]]
    assert "nouvelle.example" not in " ".join(e.data or "" for e in audited)


@pytest.mark.parametrize(
    ("email", "password", "field", "message"),
    [
        ("elodie@nouvelle.example", "pas le bon mot de passe", "mot_de_passe", "incorrect"),
        ("marc@dupont.example", None, "courriel", "déjà utilisée"),
        ("pas-une-adresse", None, "courriel", "invalide"),
        ("elodie@dupont.example", None, "courriel", "déjà votre adresse"),
        ("", None, "courriel", "manquante"),
    ],
    ids=["wrong-password", "taken", "syntax", "same", "empty"],
)
def test_a_refused_address_change_changes_nothing(
    app: Any,
    engine: Any,
    world: dict[str, str],
    elodie: Any,
    email: str,
    password: str | None,
    field: str,
    message: str,
) -> None:
    elodie.get("/profil")
    before = _rows(engine)
    refused = _ask_new_address(elodie, email, password)
    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert re.search(rf'id="erreur-{field}">[^<]*{message}', page), page
    assert _rows(engine) == before
    assert [m for m in emails(app) if "profil/courriel" in m.text] == []


def test_a_tampered_or_superseded_link_changes_nothing(
    app: Any, engine: Any, session: Any, world: dict[str, str], elodie: Any
) -> None:
    assert _ask_new_address(elodie, "premiere@nouvelle.example").status_code == 303
    first = _confirmation_path(app, "premiere@nouvelle.example")
    assert _ask_new_address(elodie, "seconde@nouvelle.example").status_code == 303
    second = _confirmation_path(app, "seconde@nouvelle.example")
    client = app.test_client()
    token_of_second = second.split("jeton=")[1].split("&")[0]
    sealed_of_first = first.split("adresse=")[1]
    forged = f"/profil/courriel/confirmer?jeton={token_of_second}&adresse={sealed_of_first}"
    before = _rows(engine)
    for path in (
        first,  # voided by the second request
        forged,  # the second link's code with the first address
        second[:-4] + "AAAA",  # an address that does not open
        second.replace("jeton=", "jeton=x"),
    ):
        assert client.get(path).status_code == 400, path
        assert _confirm(client, path).status_code == 400, path
    assert _rows(engine) == before
    assert _confirm(client, second).status_code == 200
    assert _person(session, world["elodie"]).email == "seconde@nouvelle.example"
    assert session.scalars(select(OneTimeCode).where(OneTimeCode.used_at.is_(None))).all() == []


def test_an_administrator_corrects_a_members_names(
    app: Any, session: Any, world: dict[str, str], receivers: Any
) -> None:
    from tests import factories

    admin = factories.declarant(
        session, last="Chef", first="Anne", email="anne@dupont.example", admin=True
    )
    session.commit()
    company_id = _person(session, world["elodie"]).home_establishment.company_id  # type: ignore[union-attr]
    page = f"/administration/entreprises/{company_id}/declarants/{world['elodie']}"
    client = app.test_client()
    log_in(app, client, admin.id)
    assert 'action="' + page + '/identite"' in client.get(page).get_data(as_text=True)
    refused = _post(client, page + "/identite", {"nom": "", "prenom": "Élodie"}, page=page)
    assert refused.status_code == 400 and "nom manquant" in refused.get_data(as_text=True)
    done = _post(client, page + "/identite", {"nom": "DUPONT", "prenom": "Élodie Anne"}, page=page)
    assert done.status_code == 303 and "fait=identite" in done.headers["Location"]
    person = _person(session, world["elodie"])
    assert (person.last_name, person.first_name) == ("DUPONT", "Élodie Anne")
    assert _identity(app, receivers[0], world["URSSAF"]) == [
        (world["elodie"], {"fields": ["family_name", "given_name"]})
    ]
    # a member who administers nothing may not
    marc = app.test_client()
    log_in(app, marc, world["marc"])
    forbidden = marc.post(
        page + "/identite",
        data={"csrf_token": csrf(marc, "/profil"), "nom": "X", "prenom": "Y"},
    )
    assert forbidden.status_code == 403
    assert _person(session, world["elodie"]).last_name == "DUPONT"


def test_the_operator_edits_a_declarant_from_the_cli(
    app: Any, engine: Any, session: Any, world: dict[str, str], receivers: Any, idp: Any
) -> None:
    before = _rows(engine)
    for args in (
        ("declarant", "edit", world["elodie"]),  # nothing to change
        ("declarant", "edit", "D0000000000000000000000000000000", "--last-name", "X"),
        ("declarant", "edit", world["elodie"], "--email", "pas-une-adresse"),
        ("declarant", "edit", world["elodie"], "--email", "marc@dupont.example"),
        ("declarant", "edit", world["elodie"], "--last-name", "Nom", "--first-name", " "),
    ):
        result = idp(*args)
        assert result.code == 1 and result.err.startswith("erreur : "), (args, result)
    assert _rows(engine) == before
    result = idp(
        "declarant", "edit", world["elodie"], "--first-name", "Élo", "--email",
        "elo@dupont.example", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "declarant_id": world["elodie"],
        "changed": ["given_name", "email"],
    }
    person = _person(session, world["elodie"])
    assert (person.first_name, person.email, person.email_verified) == (
        "Élo",
        "elo@dupont.example",
        False,
    )
    assert _identity(app, receivers[0], world["URSSAF"]) == [
        (world["elodie"], {"fields": ["given_name", "email"]})
    ]
    assert all(e.subject == world["marc"] for e in _told(app, receivers[1], world["AUTRE"]))
