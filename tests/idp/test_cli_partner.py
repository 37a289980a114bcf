"""``idp partner``: registry of SAML service providers and OAuth clients."""

import json

import pytest

from partners.services import hash_secret, secret_matches
from tests.idp.cli_support import ok
from tests.partners.sp_metadata import sp_metadata


@pytest.fixture
def dsn(idp):
    ok(idp, "service add --code DSN --name DSN --partner URSSAF --pagm DECLARANT=DSN_DECL")
    ok(idp, "service add --code ATMP --name AT/MP --partner CNAM --pagm DECLARANT=ATMP")


def test_add_saml_partner_from_metadata(idp, dsn, tmp_path) -> None:
    path = tmp_path / "sp.xml"
    path.write_bytes(sp_metadata()[0])
    result = idp(
        "partner",
        "add",
        "--name",
        "URSSAF",
        "--saml-metadata",
        str(path),
        "--landing-url",
        "https://sp.example/",
        "--service",
        "DSN",
        "--json",
    )
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    assert payload["identifier"] == "https://sp.example/metadata"
    assert payload["saml"]["acs"][0]["url"] == "https://sp.example/acs"
    assert payload["services"] == ["DSN"]
    shown = json.loads(idp("partner", "show", "urssaf", "--json").out)
    assert shown["name"] == "URSSAF"
    assert "URSSAF" in idp("partner", "list").out


def test_add_oauth_client_prints_secret_once(idp, dsn, session) -> None:
    result = idp(
        "partner",
        "add",
        "--name",
        "Éditeur Paie",
        "--client-id",
        "paie-app",
        "--redirect-uri",
        "https://paie.example/cb",
        "--grant",
        "authorization_code",
        "--grant",
        "client_credentials",
        "--token-auth",
        "client_secret_basic",
        "--origin",
        "https://paie.example",
        "--service",
        "DSN",
        "--json",
    )
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    secret = payload["client_secret"]
    assert payload["client_id"] == "paie-app" and len(secret) >= 40
    from sqlalchemy import select

    from partners.models import OAuthClient

    stored = session.scalars(select(OAuthClient)).one()
    assert stored.client_secret_hash == hash_secret(secret) and secret not in str(stored.__dict__)
    assert secret_matches(stored.client_secret_hash, secret)
    assert not secret_matches(stored.client_secret_hash, secret + "x")
    shown = idp("partner", "show", "éditeur paie", "--json")  # any case, accents included
    assert shown.code == 0 and json.loads(shown.out)["name"] == "Éditeur Paie"
    assert secret not in shown.out and 'client_secret"' not in shown.out


def test_edit_partner(idp, dsn) -> None:
    idp("partner", "add", "--name", "CNAM", "--token-format", "jwt")
    result = idp(
        "partner",
        "edit",
        "CNAM",
        "--token-lifetime",
        "120",
        "--claim",
        "email",
        "--trusted-portal",
        "--json",
    )
    payload = json.loads(result.out)
    assert payload["token_lifetime"] == 120 and payload["claims"] == ["email"]
    assert payload["trusted_portal"] is True and payload["token_format"] == "jwt"


BAD = [
    ("unknown service", ["--name", "X", "--service", "NOPE"], "service inconnu"),
    (
        "http redirect",
        ["--name", "X", "--client-id", "abc", "--redirect-uri", "http://evil.example/cb"],
        "redirect_uri invalide",
    ),
    (
        "fragment",
        ["--name", "X", "--client-id", "abc", "--redirect-uri", "https://a.example/#x"],
        "fragment",
    ),
    (
        "unknown grant",
        ["--name", "X", "--client-id", "abc", "--grant", "password"],
        "type d'autorisation inconnu",
    ),
    (
        "public client credentials",
        [
            "--name",
            "X",
            "--client-id",
            "abc",
            "--token-auth",
            "none",
            "--grant",
            "client_credentials",
        ],
        "client public",
    ),
    (
        "pkjwt without jwks",
        [
            "--name",
            "X",
            "--client-id",
            "abc",
            "--token-auth",
            "private_key_jwt",
            "--grant",
            "client_credentials",
        ],
        "--jwks",
    ),
    (
        "oauth without client id",
        ["--name", "X", "--redirect-uri", "https://a.example/cb"],
        "--client-id",
    ),
    (
        "bad origin",
        [
            "--name",
            "X",
            "--client-id",
            "abc",
            "--grant",
            "client_credentials",
            "--origin",
            "https://a.example/path",
        ],
        "origine invalide",
    ),
    ("lifetime too long", ["--name", "X", "--token-lifetime", "3600"], "durée de vie"),
    ("unknown claim", ["--name", "X", "--claim", "adresse"], "attribut inconnu"),
    ("duplicate", ["--name", "urssaf"], "déjà enregistré"),
    ("bad metadata", ["--name", "X", "--saml-metadata", "{bad}"], "métadonnées SAML invalides"),
]


@pytest.mark.parametrize(("case", "argv", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_partner_input_changes_nothing(
    idp, dsn, db_snapshot, tmp_path, case, argv, expected
) -> None:
    idp("partner", "add", "--name", "URSSAF")
    bad = tmp_path / "bad.xml"
    bad.write_text("<pas-des-metadonnees/>")
    args = [a.replace("{bad}", str(bad)) for a in argv]
    before = db_snapshot()
    result = idp("partner", "add", *args)
    assert result.code != 0 and result.out == ""
    assert len(result.err.strip().splitlines()) == 1 and expected in result.err
    assert db_snapshot() == before


def test_token_issue_uses_the_registry(idp, dsn, tmp_path) -> None:
    from tests.factories import PASSWORD, SIRET_A

    idp("company", "add", "--siret", SIRET_A, "--name", "Boulangerie")
    person = json.loads(
        idp(
            "declarant",
            "add",
            "--siret",
            SIRET_A,
            "--last-name",
            "Dupont",
            "--first-name",
            "Élodie",
            "--email",
            "e@d.example",
            "--password-stdin",
            "--json",
            stdin=PASSWORD + "\n",
        ).out
    )["declarant_id"]
    idp("habilitation", "grant", "--declarant", person, "--siret", SIRET_A, "--service", "DSN")
    idp("habilitation", "grant", "--declarant", person, "--siret", SIRET_A, "--service", "ATMP")
    path = tmp_path / "sp.xml"
    path.write_bytes(sp_metadata()[0])
    idp("partner", "add", "--name", "URSSAF", "--saml-metadata", str(path), "--claim", "email")
    token = idp("token", "issue", "--declarant", person, "--partner", "URSSAF")
    assert token.code == 0, token.err
    assert "https://sp.example/metadata</saml:Audience>" in token.out
    assert 'Recipient="https://sp.example/acs"' in token.out
    assert "DSN_DECL" in token.out and "ATMP" not in token.out
    assert "e@d.example" in token.out  # the partner may receive the email


def test_frontchannel_logout_uri(idp, dsn) -> None:
    result = idp(
        "partner",
        "add",
        "--name",
        "RP",
        "--client-id",
        "rp-app",
        "--redirect-uri",
        "https://rp.example/cb",
        "--frontchannel-logout-uri",
        "https://rp.example/fc",
        "--json",
    )
    assert (
        json.loads(result.out)["clients"][0]["frontchannel_logout_uri"] == "https://rp.example/fc"
    )
    bad = idp(
        "partner",
        "edit",
        "RP",
        "--client-id",
        "rp-app",
        "--redirect-uri",
        "https://rp.example/cb",
        "--frontchannel-logout-uri",
        "http://evil.example/fc",
    )
    assert bad.code == 1 and "frontchannel_logout_uri invalide" in bad.err
