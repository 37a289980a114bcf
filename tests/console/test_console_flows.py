"""The operator console's changes: each goes through the partner registry, is audited
with the operator as actor and their address, bumps the partners' cache generation, and
a refused form says why beside the field and changes nothing."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import select

from idp.stores.models import CacheGeneration
from partners.models import OAuthClient, Partner
from partners.services import secret_matches
from rcd_store.models import AuditEvent
from tests.administration.pages_support import post, state
from tests.console.support import Console, log_in, set_up
from tests.partners.sp_metadata import sp_metadata

SECRET = 'id="secret" readonly value="'


@pytest.fixture
def c(app: Any, session: Any) -> Console:
    return set_up(app, session)


@pytest.fixture
def operator(app: Any, c: Console) -> Any:
    return log_in(app, c.operator)


def _events(session: Any, kind: str) -> list[AuditEvent]:
    """The ``kind`` events written since the set-up (whose changes name no actor)."""
    session.expire_all()
    query = select(AuditEvent).where(AuditEvent.kind == kind, AuditEvent.actor.is_not(None))
    return list(session.scalars(query.order_by(AuditEvent.id)))


def _generation(session: Any) -> int:
    session.expire_all()
    found = session.scalar(select(CacheGeneration.value).where(CacheGeneration.name == "partners"))
    return int(found or 0)


def _partner(session: Any, name: str) -> Partner:
    session.expire_all()
    return session.scalars(select(Partner).where(Partner.name == name)).one()


def _secret(html: str) -> str:
    start = html.index(SECRET) + len(SECRET)
    return html[start : html.index('"', start)]


ADD = {
    "nom": "Caisse Nationale",
    "url_arrivee": "https://cnav.example/arrivee",
    "format": "jwt",
    "duree": "120",
    "services": ["DSN", "ATMP"],
    "recepteur": "https://cnav.example/evenements",
}


def test_add_a_partner(app: Any, session: Any, c: Console, operator: Any) -> None:
    before = _generation(session)
    response = post(operator, "/console/partenaires/nouveau", ADD)
    assert response.status_code == 303
    added = _partner(session, "Caisse Nationale")
    assert response.headers["Location"] == f"/console/partenaires/{added.id}?fait=ajout"
    assert added.token_format == "jwt" and added.token_lifetime_seconds == 120
    assert [s.code for s in added.services] == ["ATMP", "DSN"]
    assert added.event_receiver_url == "https://cnav.example/evenements"
    (event,) = _events(session, "partner.added")
    assert event.actor == c.operator and event.target == "Caisse Nationale"
    assert json.loads(event.data)["address"] == "127.0.0.1"
    assert _generation(session) > before
    page = operator.get(response.headers["Location"]).get_data(as_text=True)
    assert "Partenaire enregistré." in page


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"url_arrivee": "http://cnav.example/"}, "url_arrivee", "URL d&#39;arrivée invalide"),
        ({"duree": "3600"}, "duree", "entre 30 et 300 secondes"),
        ({"duree": "dix"}, "duree", "Nombre entier de secondes attendu."),
        ({"format": "xml"}, "format", "format de jeton inconnu"),
        ({"services": ["NOPE"]}, "services", "service inconnu"),
        ({"recepteur": "ftp://x.example"}, "recepteur", "récepteur d&#39;événements invalide"),
        ({"nom": "urssaf"}, "nom", "partenaire déjà enregistré"),
        ({"nom": "<script>"}, "nom", "nom de partenaire invalide"),
    ],
)
def test_bad_input_is_refused_beside_its_field_and_changes_nothing(
    operator: Any, db_snapshot: Any, change: dict[str, Any], field: str, reason: str
) -> None:
    before = state(db_snapshot)
    response = post(operator, "/console/partenaires/nouveau", {**ADD, **change})
    assert response.status_code in (400, 409)
    html = response.get_data(as_text=True)
    beside = html.split(f'id="{field}-erreur">', 1)[1].split("</span>", 1)[0]
    assert reason in beside, html
    assert 'aria-describedby="' + field + '-erreur"' in html
    assert "Rien n&#39;a été modifié" in html
    sent = {**ADD, **change}
    for name in ("nom", "url_arrivee", "duree", "recepteur"):  # what was typed is kept
        assert f'value="{escape(sent[name])}"' in html, name
    assert state(db_snapshot) == before


def test_edit_a_partner(session: Any, c: Console, operator: Any) -> None:
    before = _generation(session)
    response = post(
        operator,
        f"/console/partenaires/{c.partner}",
        {
            "url_arrivee": "https://urssaf.example/arrivee",
            "format": "jwt",
            "duree": "60",
            "services": ["ATMP"],
            "recepteur": "https://urssaf.example/set",
        },
    )
    assert response.status_code == 303
    edited = _partner(session, "URSSAF")
    assert edited.landing_url == "https://urssaf.example/arrivee"
    assert (edited.token_format, edited.token_lifetime_seconds) == ("jwt", 60)
    assert [s.code for s in edited.services] == ["ATMP"]
    assert edited.event_receiver_url == "https://urssaf.example/set"
    (event,) = _events(session, "partner.edited")
    assert event.actor == c.operator and json.loads(event.data)["services"] == ["ATMP"]
    assert _generation(session) > before
    # every box unticked, the receiver emptied: it shares nothing, it polls
    post(operator, f"/console/partenaires/{c.partner}", {"format": "jwt", "recepteur": ""})
    edited = _partner(session, "URSSAF")
    assert edited.services == [] and edited.event_receiver_url is None


def test_a_refused_edit_changes_nothing(operator: Any, c: Console, db_snapshot: Any) -> None:
    before = state(db_snapshot)
    response = post(
        operator,
        f"/console/partenaires/{c.partner}",
        {"format": "jwt", "duree": "5", "services": ["ATMP"], "recepteur": "https://x.example"},
    )
    assert response.status_code == 400
    assert "entre 30 et 300 secondes" in response.get_data(as_text=True)
    assert state(db_snapshot) == before
    assert operator.get("/console/partenaires/987654").status_code == 404


CLIENT = {
    "client_id": "cnav-widget",
    "redirections": "https://cnav.example/retour\nhttps://cnav.example/autre",
    "origines": "https://cnav.example",
    "autorisations": ["authorization_code", "refresh_token"],
    "authentification": "client_secret_basic",
}


def test_clients_add_edit_rotate_delete(session: Any, c: Console, operator: Any) -> None:
    base = f"/console/partenaires/{c.partner}/clients"
    added = post(operator, f"{base}/nouveau", CLIENT)
    assert added.status_code == 200 and "affiché une seule fois" in added.get_data(as_text=True)
    first = _secret(added.get_data(as_text=True))
    session.expire_all()
    client = session.scalars(
        select(OAuthClient).where(OAuthClient.client_id == "cnav-widget")
    ).one()
    assert client.origins == ["https://cnav.example"]
    assert client.redirect_uris == ["https://cnav.example/retour", "https://cnav.example/autre"]
    assert secret_matches(client.client_secret_hash, first)
    # edit: one redirect URI, another origin; the secret is kept
    edited = post(
        operator,
        f"{base}/{client.id}",
        {**CLIENT, "redirections": "https://cnav.example/retour", "origines": "https://w.example"},
    )
    assert edited.status_code == 303
    session.expire_all()
    client = session.get(OAuthClient, client.id)
    assert client.redirect_uris == ["https://cnav.example/retour"]
    assert client.origins == ["https://w.example"]
    assert secret_matches(client.client_secret_hash, first)
    rotated = post(operator, f"{base}/{client.id}/secret")
    second = _secret(rotated.get_data(as_text=True))
    session.expire_all()
    client = session.get(OAuthClient, client.id)
    assert second != first and secret_matches(client.client_secret_hash, second)
    assert not secret_matches(client.client_secret_hash, first)
    assert second not in operator.get(f"/console/partenaires/{c.partner}").get_data(as_text=True)
    client_pk = client.id
    deleted = post(operator, f"{base}/{client_pk}/supprimer")
    assert deleted.status_code == 303
    session.expire_all()
    assert session.get(OAuthClient, client_pk) is None
    edits = _events(session, "partner.edited")
    # added, edited, a new secret, deleted
    assert len(edits) == 4 and {e.actor for e in edits} == {c.operator}
    assert all(json.loads(e.data)["address"] == "127.0.0.1" for e in edits)
    assert all(first not in e.data and second not in e.data for e in edits)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"origines": "https://cnav.example/chemin"}, "origines", "origine invalide"),
        ({"redirections": "javascript:alert(1)"}, "redirections", "redirect_uri invalide"),
        ({"redirections": ""}, "redirections", "authorization_code exige"),
        ({"authentification": "magic"}, "authentification", "méthode d&#39;authentification"),
        ({"autorisations": ["password"]}, "autorisations", "Type d&#39;autorisation inconnu"),
        ({"client_id": "urssaf-web"}, "client_id", "existe déjà"),
        ({"client_id": "a b"}, "client_id", "identifiant de client invalide"),
        (
            {"authentification": "none", "autorisations": ["client_credentials"]},
            "autorisations",
            "un client public",
        ),
    ],
)
def test_a_bad_client_is_refused_beside_its_field(
    operator: Any, c: Console, db_snapshot: Any, change: dict[str, Any], field: str, reason: str
) -> None:
    before = state(db_snapshot)
    response = post(
        operator, f"/console/partenaires/{c.partner}/clients/nouveau", {**CLIENT, **change}
    )
    assert response.status_code in (400, 409)
    html = response.get_data(as_text=True)
    beside = html.split(f'id="{field}-erreur">', 1)[1].split("</span>", 1)[0]
    assert reason in beside, html
    assert state(db_snapshot) == before


def test_another_partner_s_client_is_not_found(
    app: Any, session: Any, c: Console, operator: Any, db_snapshot: Any
) -> None:
    post(operator, "/console/partenaires/nouveau", ADD)
    other = _partner(session, "Caisse Nationale").id
    before = state(db_snapshot)
    for path in ("", "/secret", "/supprimer"):
        url = f"/console/partenaires/{other}/clients/{c.client}{path}"
        response = operator.get(url) if not path else post(operator, url, CLIENT)
        assert response.status_code in (404, 405), url
        if path:
            assert response.status_code == 404
    assert (
        post(operator, f"/console/partenaires/{other}/clients/{c.client}", CLIENT).status_code
        == 404
    )
    assert state(db_snapshot) == before


def test_saml_metadata_upload(session: Any, c: Console, operator: Any, db_snapshot: Any) -> None:
    url = f"/console/partenaires/{c.partner}/saml"
    before = state(db_snapshot)
    for data, reason in (
        (b"<pas du xml", "métadonnées SAML invalides"),
        (b"", "Choisissez le fichier XML des métadonnées ou donnez"),
    ):
        refused = post(
            operator,
            url,
            {"metadonnees": (io.BytesIO(data), "sp.xml")},
            content_type="multipart/form-data",
        )
        assert refused.status_code == 400
        assert reason in refused.get_data(as_text=True).split('id="metadonnees-erreur">')[1]
    assert state(db_snapshot) == before
    metadata, _ = sp_metadata("https://urssaf.example/sp", "https://urssaf.example/acs")
    done = post(
        operator,
        url,
        {"metadonnees": (io.BytesIO(metadata), "sp.xml")},
        content_type="multipart/form-data",
    )
    assert done.status_code == 303
    partner = _partner(session, "URSSAF")
    assert partner.saml is not None and partner.saml.entity_id == "https://urssaf.example/sp"
    assert partner.identifier == "https://urssaf.example/sp"
    (event,) = _events(session, "partner.edited")
    assert event.actor == c.operator and json.loads(event.data)["saml"]["entity_id"]


THEME = {
    "theme_fond": "#1A5E20",
    "theme_texte": "#FFFFFF",
    "theme_logo": "https://urssaf.example/logo.png",
    "theme_fr": "Se connecter avec Interops",
    "theme_en": "Log in with Interops",
}


def test_theme_set_and_reset(session: Any, c: Console, operator: Any) -> None:
    url = f"/console/partenaires/{c.partner}/theme"
    before = _generation(session)
    assert post(operator, url, THEME).status_code == 303
    assert _partner(session, "URSSAF").theme == {
        "primary": "#1a5e20",
        "text": "#ffffff",
        "logo_url": "https://urssaf.example/logo.png",
        "label": {"fr": "Se connecter avec Interops", "en": "Log in with Interops"},
    }
    assert _generation(session) > before
    (event,) = _events(session, "partner.edited")
    assert event.actor == c.operator and json.loads(event.data)["theme"]["primary"] == "#1a5e20"
    page = operator.get(url).get_data(as_text=True)
    assert 'value="#1a5e20"' in page and 'value="Log in with Interops"' in page
    # every field emptied: the default look
    assert post(operator, url, {k: "" for k in THEME}).status_code == 303
    assert _partner(session, "URSSAF").theme is None


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"theme_texte": "#1B5E21"}, "theme_texte", "contraste insuffisant"),
        ({"theme_fond": "rouge"}, "theme_fond", "couleur principale invalide"),
        ({"theme_logo": "javascript:alert(1)"}, "theme_logo", "URL du logo invalide"),
        ({"theme_fr": "<b>Entrer</b>"}, "theme_fr", "sans balise"),
        ({"theme_en": "x" * 61}, "theme_en", "de 1 à 60 caractères"),
    ],
)
def test_a_bad_theme_is_refused_beside_its_field(
    operator: Any, c: Console, db_snapshot: Any, change: dict[str, str], field: str, reason: str
) -> None:
    before = state(db_snapshot)
    response = post(operator, f"/console/partenaires/{c.partner}/theme", {**THEME, **change})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert reason in html.split(f'id="{field}-erreur">', 1)[1].split("</span>", 1)[0], html
    assert state(db_snapshot) == before


def test_a_secret_rotated_in_the_console_is_refused_by_another_worker_within_a_second(
    app: Any, app_config: dict[str, Any], c: Console
) -> None:
    """The console runs in one process, the token endpoint (its client cache warm) in
    another: the old secret is refused there within a second, the new one accepted."""
    from idp.factory import create_app
    from idp.stores.db import database
    from idp.tokens.signing import ensure_keys
    from tests.idp.test_generations import _refused_within, _token

    ensure_keys(app)
    console_app = create_app(app_config)
    operator = log_in(console_app, c.operator)
    machine = {**CLIENT, "client_id": "cnav-batch", "autorisations": ["client_credentials"]}
    added = post(operator, f"/console/partenaires/{c.partner}/clients/nouveau", machine)
    old = _secret(added.get_data(as_text=True))
    assert _token(app, "cnav-batch", old).status_code == 200  # the worker's cache is warm
    with console_app.app_context():
        from idp.stores import db

        pk = (
            db.session()
            .scalars(select(OAuthClient.id).where(OAuthClient.client_id == "cnav-batch"))
            .one()
        )
    rotated = post(operator, f"/console/partenaires/{c.partner}/clients/{pk}/secret")
    new = _secret(rotated.get_data(as_text=True))
    assert _refused_within(app, "cnav-batch", old, 1.5) <= 1.0
    assert _token(app, "cnav-batch", new).status_code == 200
    database(console_app).engine.dispose()


def test_a_new_secret_is_refused_where_it_cannot_be_given(
    session: Any, c: Console, operator: Any, db_snapshot: Any
) -> None:
    """A public client has no secret; a client whose stored settings no longer pass the
    registry's checks gets none either (400 with the reason), nothing changed."""
    public = {**CLIENT, "client_id": "cnav-public", "authentification": "none"}
    post(operator, f"/console/partenaires/{c.partner}/clients/nouveau", public)
    session.expire_all()
    pk = session.scalars(select(OAuthClient.id).where(OAuthClient.client_id == "cnav-public")).one()
    stale = session.get(OAuthClient, c.client)
    stale.redirect_uris = ["http://urssaf.example/retour"]  # written before the https rule
    session.commit()
    before = state(db_snapshot)
    for client_pk, reason in ((pk, "ne s&#39;authentifie pas par secret"), (c.client, "https")):
        refused = post(operator, f"/console/partenaires/{c.partner}/clients/{client_pk}/secret")
        assert refused.status_code == 400 and reason in refused.get_data(as_text=True)
    assert state(db_snapshot) == before
