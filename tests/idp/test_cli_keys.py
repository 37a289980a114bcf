"""``idp keys``: list, rotate (audited), import/export, master key; JWKS endpoint."""

import json

from keys.crypto import MasterKey


def test_list_creates_keys_on_first_use(idp) -> None:
    result = idp("keys", "list", "--json")
    keys = json.loads(result.out)["keys"]
    assert sorted((k["use"], k["state"]) for k in keys) == [
        ("jwt", "active"),
        ("jwt", "next"),
        ("saml", "active"),
        ("saml", "next"),
    ]
    assert {k["alg"] for k in keys if k["use"] == "jwt"} == {"ES256"}
    assert {k["alg"] for k in keys if k["use"] == "saml"} == {"RS256"}


def test_rotate_moves_each_key_and_is_audited(idp) -> None:
    before = {k["kid"]: k for k in json.loads(idp("keys", "list", "--json").out)["keys"]}
    result = idp("keys", "rotate", "--use", "jwt", "--json")
    assert result.code == 0, result.err
    after = {k["kid"]: k for k in json.loads(idp("keys", "list", "--json").out)["keys"]}
    old_active = next(k for k, v in before.items() if v["use"] == "jwt" and v["state"] == "active")
    old_next = next(k for k, v in before.items() if v["use"] == "jwt" and v["state"] == "next")
    assert after[old_active]["state"] == "retiring" and after[old_active]["publish_until"]
    assert after[old_next]["state"] == "active"
    assert len([v for v in after.values() if v["use"] == "jwt"]) == 3
    assert all(after[k]["state"] == v["state"] for k, v in before.items() if v["use"] == "saml")
    events = [json.loads(line) for line in idp("audit", "export").out.splitlines()]
    assert any(e["kind"] == "keys.rotated" and e["target"] == "jwt" for e in events)
    assert idp("audit", "verify").code == 0


def test_jwks_publishes_next_active_and_retiring(app, idp) -> None:
    idp("keys", "rotate", "--use", "jwt")
    from idp.tokens.signing import keyring

    keyring(app)._rows.clear()
    body = app.test_client().get("/.well-known/jwks.json").json
    listed = json.loads(idp("keys", "list", "--json").out)["keys"]
    expected = {k["kid"] for k in listed if k["use"] == "jwt" and k["state"] != "retired"}
    assert {k["kid"] for k in body["keys"]} == expected and len(expected) == 3
    assert all("d" not in k for k in body["keys"])


def test_export_import_round_trip(idp, tmp_path) -> None:
    kid = next(
        k["kid"]
        for k in json.loads(idp("keys", "list", "--json").out)["keys"]
        if k["use"] == "saml" and k["state"] == "next"
    )
    out = tmp_path / "key.p12"
    result = idp(
        "keys",
        "export",
        "--kid",
        kid,
        "--format",
        "pkcs12",
        "--out",
        str(out),
        "--passphrase-stdin",
        stdin="une phrase de passe\n",
    )
    assert result.code == 0, result.err
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    again = idp(
        "keys",
        "import",
        str(out),
        "--use",
        "saml",
        "--format",
        "pkcs12",
        "--passphrase-stdin",
        stdin="une phrase de passe\n",
    )
    assert again.code == 1 and "import refusé" in again.err  # same kid already stored
    wrong = idp(
        "keys",
        "import",
        str(out),
        "--use",
        "saml",
        "--format",
        "pkcs12",
        "--passphrase-stdin",
        stdin="mauvaise\n",
    )
    assert wrong.code == 1 and wrong.err.count("\n") == 1
    assert idp("keys", "export", "--kid", "nope", "--out", str(tmp_path / "x")).code == 1
    assert idp("keys", "export", "--kid", kid, "--out", str(out)).code == 1  # exists


def test_import_pem(idp, tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    idp("keys", "list")  # the keyring exists: an imported key waits as "next"
    result = idp("keys", "import", str(path), "--use", "jwt", "--json")
    assert result.code == 0, result.err
    kid = json.loads(result.out)["kid"]
    listed = {k["kid"]: k for k in json.loads(idp("keys", "list", "--json").out)["keys"]}
    assert listed[kid]["state"] == "next"


def test_master_key_command(idp) -> None:
    text = idp("keys", "master-key").out.strip()
    assert MasterKey.from_text(text)


def test_bad_master_key_is_refused(idp, monkeypatch) -> None:
    monkeypatch.setenv("IDP_MASTER_KEY", "trop-courte")
    result = idp("keys", "list")
    assert result.code == 1 and "IDP_MASTER_KEY invalide" in result.err


def test_saml_metadata_publishes_next_active_and_retiring(app, idp) -> None:
    from cryptography import x509

    from idp.tokens.signing import keyring
    from keys.model import thumbprint
    from token_suite import Trust

    idp("keys", "rotate", "--use", "saml")
    keyring(app)._rows.clear()
    document = app.test_client().get("/saml/metadata")
    assert document.status_code == 200
    assert document.mimetype == "application/samlmetadata+xml"
    trust = Trust.from_metadata(document.data)
    assert trust.issuer == app.config["SAML_ENTITY_ID"]
    listed = json.loads(idp("keys", "list", "--json").out)["keys"]
    expected = {k["kid"] for k in listed if k["use"] == "saml" and k["state"] != "retired"}
    published = {thumbprint(c.public_key()) for c in trust.saml_certificates}
    assert published == expected and len(expected) == 3
    assert all(isinstance(c, x509.Certificate) for c in trust.saml_certificates)
