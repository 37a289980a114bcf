"""The directory CLI: what it prints, and that bad input changes nothing."""

import json

import pytest

from tests.factories import PASSWORD, SIRET_A, SIRET_A2, SIRET_B, SIRET_FIRM
from tests.idp.cli_support import argv, ok


@pytest.fixture
def directory(idp):
    """A company, a service and a declarant created through the CLI itself."""
    ok(idp, f"company add --siret {SIRET_A} --name 'Boulangerie Dupont'")
    ok(
        idp,
        "service add --code DSN --name DSN --partner URSSAF --pagm DECLARANT=DSN_DECL "
        "--pagm CONSULTATION=DSN_CONS",
    )
    result = ok(
        idp,
        f"declarant add --siret {SIRET_A} --last-name Dupont --first-name Élodie "
        "--email elodie@dupont.example --admin --password-stdin --json",
        stdin=PASSWORD + "\n",
    )
    return json.loads(result.out)["declarant_id"]


def test_help_is_french(idp) -> None:
    result = idp("--help")
    assert result.code == 0 and "annuaire" in result.out
    assert "habilitation" in idp("habilitation", "--help").out


def test_commands_print_what_they_did(idp, directory) -> None:
    result = idp("company", "add", "--siret", SIRET_A2, "--name", "Boulangerie Dupont", "--json")
    assert json.loads(result.out) == {"siret": SIRET_A2, "siren": SIRET_A[:9], "head_office": False}
    result = idp(
        "habilitation", "grant", "--declarant", directory, "--siret", SIRET_A2, "--service", "DSN"
    )
    assert result.code == 0 and "habilitation accordée" in result.out
    result = idp(
        "habilitation",
        "grant",
        "--declarant",
        directory,
        "--siret",
        SIRET_A2,
        "--service",
        "DSN",
        "--json",
    )
    assert json.loads(result.out)["created"] is False
    result = idp(
        "habilitation",
        "revoke",
        "--json",
        "--declarant",
        directory,
        "--siret",
        SIRET_A2,
        "--service",
        "DSN",
    )
    assert json.loads(result.out)["revoked"] is True
    result = idp("audit", "verify")
    assert result.code == 0 and "journal intègre" in result.out
    lines = idp("audit", "export").out.splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert "habilitation.granted" in kinds and "habilitation.revoked" in kinds
    # the trail names people by id only
    assert "Dupont" not in "\n".join(lines) and "Élodie" not in "\n".join(lines)


def test_declarant_json_is_one_object(idp, directory) -> None:
    result = idp(
        "declarant",
        "add",
        "--siret",
        SIRET_A,
        "--last-name",
        "Martin",
        "--first-name",
        "Jean",
        "--password-stdin",
        "--json",
        stdin="une phrase de passe longue\n",
    )
    payload = json.loads(result.out)
    assert set(payload) >= {"declarant_id"} and payload["declarant_id"] != directory


NEW_DECLARANT = f"declarant add --siret {SIRET_A} --last-name X --first-name Y"
BAD = [
    ("siret checksum", argv("company add --siret 73282932000075 --name X"), "SIRET invalide"),
    ("duplicate siret", argv(f"company add --siret {SIRET_A} --name X"), "déjà enregistré"),
    ("missing field", argv(f"company add --siret {SIRET_B}"), "--name"),
    (
        "unknown declarant",
        argv(f"habilitation grant --declarant Dinconnu --siret {SIRET_A} --service DSN"),
        "déclarant inconnu",
    ),
    (
        "unknown service",
        argv(f"habilitation grant --declarant '{{id}}' --siret {SIRET_A} --service NOPE"),
        "service inconnu",
    ),
    (
        "unknown establishment",
        argv(f"habilitation grant --declarant '{{id}}' --siret {SIRET_B} --service DSN"),
        "établissement inconnu",
    ),
    (
        "bad role",
        argv(
            f"habilitation grant --declarant '{{id}}' --siret {SIRET_A} --service DSN --role CHEF"
        ),
        "rôle inconnu",
    ),
    (
        "revoke absent",
        argv(
            f"habilitation revoke --declarant '{{id}}' --siret {SIRET_A} --service DSN "
            "--role CONSULTATION"
        ),
        "inexistante",
    ),
    (
        "duplicate service",
        argv("service add --code DSN --name D --partner U --pagm DECLARANT=X"),
        "déjà enregistré",
    ),
    (
        "bad pagm",
        argv("service add --code ATMP --name A --partner AM --pagm DECLARANT"),
        "PAGM invalide",
    ),
    ("no pagm", argv("service add --code ATMP --name A --partner AM"), "PAGM"),
    (
        "duplicate email",
        argv(f"{NEW_DECLARANT} --email ELODIE@dupont.example --password-stdin"),
        "déjà utilisée",
    ),
    (
        "bad email",
        argv(f"{NEW_DECLARANT} --email pas-une-adresse --password-stdin"),
        "adresse électronique invalide",
    ),
    (
        "weak password",
        argv(f"{NEW_DECLARANT} --password-stdin '<stdin>motdepasse123'"),
        "trop courant",
    ),
    (
        "short password",
        argv(f"{NEW_DECLARANT} --password-stdin '<stdin>court'"),
        "trop court",
    ),
    (
        "no password",
        argv(f"declarant add --siret {SIRET_A} --last-name X --first-name Y"),
        "--password-stdin",
    ),
    (
        "declarant unknown siret",
        argv(f"declarant add --siret {SIRET_B} --last-name X --first-name Y --password-stdin"),
        "établissement inconnu",
    ),
    (
        "mandate unknown firm",
        argv(
            f"mandate add --client-siren {SIRET_A[:9]} --firm-siren {SIRET_FIRM[:9]} --service DSN"
        ),
        "entreprise inconnue",
    ),
    ("bad since", argv("audit export --since hier"), "date invalide"),
    ("unknown option", argv(f"company add --siret {SIRET_A} --name X --bogus"), "bogus"),
]


@pytest.mark.parametrize(("case", "argv", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_changes_nothing(
    idp, directory, db_snapshot, case, argv, expected
) -> None:
    stdin = PASSWORD + "\n"
    args = []
    for arg in argv:
        if arg.startswith("<stdin>"):
            stdin = arg[len("<stdin>") :] + "\n"
        else:
            args.append(arg.replace("{id}", directory))
    before = db_snapshot()
    result = idp(*args, stdin=stdin)
    assert result.code != 0
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("erreur : ") and expected in lines[0]
    assert db_snapshot() == before


def test_audit_verify_names_the_altered_event(idp, directory, engine) -> None:
    from sqlalchemy import text

    with engine.begin() as conn:
        event_id = conn.execute(text("SELECT max(id) FROM audit_event")).scalar()
        conn.execute(
            text("UPDATE audit_event SET target = 'Dautre' WHERE id = :i"), {"i": event_id}
        )
    result = idp("audit", "verify")
    assert result.code == 1
    assert f"événement {event_id} " in result.err and "altéré" in result.err


def test_db_upgrade(idp) -> None:
    result = idp("db", "upgrade", "--json")
    assert result.code == 0 and json.loads(result.out)["revision"]
