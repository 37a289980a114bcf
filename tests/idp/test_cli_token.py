"""``idp token issue`` then ``idp token verify`` with only the published metadata / JWKS."""

import json

import pytest

from partners.services import default_identifier as partner_audience
from tests.factories import PASSWORD, SIRET_A, SIRET_A2
from tests.idp.cli_support import ok


@pytest.fixture
def declarant_id(idp) -> str:
    for siret in (SIRET_A, SIRET_A2):
        ok(idp, f"company add --siret {siret} --name 'Boulangerie Dupont'")
    ok(idp, "service add --code DSN --name DSN --partner URSSAF --pagm DECLARANT=DSN_DECL")
    ok(
        idp,
        "service add --code ATMP --name AT/MP --partner 'Assurance Maladie' "
        "--pagm DECLARANT=ATMP_GEST",
    )
    out = ok(
        idp,
        f"declarant add --siret {SIRET_A} --last-name Dupont --first-name Élodie "
        "--email e@dupont.example --password-stdin --json",
        stdin=PASSWORD + "\n",
    ).out
    person = json.loads(out)["declarant_id"]
    for siret, code in ((SIRET_A, "DSN"), (SIRET_A2, "DSN"), (SIRET_A, "ATMP")):
        ok(idp, f"habilitation grant --declarant {person} --siret {siret} --service {code}")
    return person


@pytest.fixture
def published(app, tmp_path, idp):
    idp("keys", "list")  # creates the keys
    client = app.test_client()
    metadata = tmp_path / "idp-metadata.xml"
    metadata.write_bytes(client.get("/saml/metadata").data)
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(client.get("/.well-known/jwks.json").data)
    return metadata, jwks


@pytest.mark.parametrize("fmt", ["saml", "jwt"])
def test_issue_then_verify_minimised(
    idp, declarant_id, published, tmp_path, monkeypatch, app, fmt
) -> None:
    metadata, jwks = published
    token = idp(
        "token", "issue", "--declarant", declarant_id, "--partner", "URSSAF", "--format", fmt
    )
    assert token.code == 0, token.err
    path = tmp_path / f"token.{fmt}"
    path.write_text(token.out.strip())
    # the partner runs verify in its own empty instance folder
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path / "partner"))
    monkeypatch.delenv("IDP_DATABASE_URL")
    monkeypatch.delenv("IDP_MASTER_KEY")
    trust = (
        ["--metadata", str(metadata)]
        if fmt == "saml"
        else ["--jwks", str(jwks), "--issuer", app.config["BASE_URL"]]
    )
    audience = partner_audience("URSSAF")
    result = idp("token", "verify", "--audience", audience, *trust, str(path))
    assert result.code == 0, result.out + result.err
    claims = json.loads(result.out)
    assert claims["sub"] == declarant_id
    assert claims["pagm"] == ["DSN_DECL"]  # no AT/MP right for the DSN partner
    assert sorted(h["siret"] for h in claims["habilitations"]) == [SIRET_A, SIRET_A2]
    assert {h["service"] for h in claims["habilitations"]} == {"DSN"}
    assert claims["email"] is None
    assert not (tmp_path / "partner" / "master.key").exists()
    # the partner's replay cache is its owner's only, whatever the umask
    assert (tmp_path / "partner").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "partner" / "replay.sqlite3").stat().st_mode & 0o777 == 0o600
    # the same token again is a replay
    again = idp("token", "verify", "--audience", audience, *trust, str(path))
    assert again.code == 1 and again.out.startswith("vi:Replay")
    # another audience is refused
    other = idp("token", "verify", "--audience", "urn:autre", *trust, str(path))
    assert other.code == 1 and other.out.startswith("vi:InvalidService")


def test_verify_tampered_from_stdin(idp, declarant_id, published, app) -> None:
    metadata, _ = published
    token = idp("token", "issue", "--declarant", declarant_id, "--partner", "URSSAF").out
    tampered = token.replace("DSN_DECL", "DSN_DECX")
    result = idp(
        "token",
        "verify",
        "--audience",
        partner_audience("URSSAF"),
        "--metadata",
        str(metadata),
        "-",
        stdin=tampered,
    )
    assert result.code == 1 and result.out.startswith("wsse:FailedCheck")


def test_verify_usage_errors(idp, published) -> None:
    _, jwks = published
    assert "--issuer" in idp("token", "verify", "--audience", "a", "--jwks", str(jwks), "x").err
    assert idp("token", "verify", "--audience", "a", "x").code == 1
    bad = idp("token", "verify", "--audience", "a", "--metadata", str(jwks), "x")
    assert bad.code == 1 and "ancre de confiance invalide" in bad.err


def test_issue_errors(idp, declarant_id) -> None:
    result = idp("token", "issue", "--declarant", declarant_id, "--partner", "Inconnu")
    assert result.code == 1 and "partenaire inconnu" in result.err
    result = idp("token", "issue", "--declarant", "Dnope", "--partner", "URSSAF")
    assert result.code == 1 and "déclarant inconnu" in result.err


def test_issue_is_audited(idp, declarant_id) -> None:
    result = idp(
        "token",
        "issue",
        "--declarant",
        declarant_id,
        "--partner",
        "URSSAF",
        "--format",
        "jwt",
        "--json",
    )
    token_id = json.loads(result.out)["id"]
    events = [json.loads(line) for line in idp("audit", "export").out.splitlines()]
    issued = [e for e in events if e["kind"] == "token.issued"]
    assert issued[-1]["data"]["id"] == token_id and issued[-1]["actor"] == declarant_id
