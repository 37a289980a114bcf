"""The partners' distribution, ``interops-token-suite``: built from ``packaging/token-suite``
(the same source files as the identity provider's), installed alone in a fresh virtual
environment, it verifies our tokens there and pulls none of the server's dependencies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keys.generate import generate_key
from keys.jwks import jwks
from keys.model import KeyUse
from token_suite import jwt, saml
from token_suite.metadata import idp_metadata
from token_suite.vector import ACR_PASSWORD, Habilitation, IdentityVector

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = {"flask", "werkzeug", "sqlalchemy", "alembic", "psycopg", "psycopg-binary", "redis"}
SERVER_ONLY |= {"gunicorn", "argon2-cffi", "authlib", "click", "pyotp", "interops-idp"}
ISSUER = "https://idp.example"
ENTITY = "urn:interops:73282932000074:idp:test"

VERIFY = """
import json, sys
from token_suite import Trust, jwt, saml
from token_suite.errors import InteropsError

assert "/site-packages/" in jwt.__file__, jwt.__file__
import token_suite._speedups  # the C module was built by the wheel
trust = Trust.from_jwks("jwks.json", issuer="https://idp.example")
vector = jwt.verify(open("jeton.jwt").read(), trust=trust, audience="urn:partenaire:api")
document = open("jeton.xml", "rb").read()
saml_vector = saml.verify(
    document, trust=Trust.from_metadata("idp-metadata.xml"), audience="https://sp.example/metadata"
)
try:
    jwt.verify(open("jeton.jwt").read(), trust=trust, audience="urn:autre:api")
except InteropsError as exc:
    refused = exc.code
print(json.dumps({"jwt": vector.subject, "saml": saml_vector.subject, "refused": refused}))
"""


def _run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the small wheel and its dependencies only."""
    work = tmp_path_factory.mktemp("distribution")
    wheels = work / "wheels"
    source = ROOT / "packaging" / "token-suite"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, source)
    (wheel,) = wheels.glob("interops_token_suite-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    _run(env_dir / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    return env_dir


def _tokens(folder: Path) -> None:
    """Our documents and tokens, issued now, written where the partner's script reads them."""
    now = datetime.now(UTC)
    jwt_key = generate_key(KeyUse.JWT, now=now)
    saml_key = generate_key(KeyUse.SAML, now=now)
    vector = IdentityVector(
        subject="D0000042",
        siret="73282932000074",
        pagm=("DSN_DECL",),
        habilitations=(Habilitation("DSN", "73282932000074", "DECLARANT"),),
        acr=ACR_PASSWORD,
        auth_time=now,
    )
    (folder / "jwks.json").write_text(json.dumps(jwks([jwt_key])))
    (folder / "jeton.jwt").write_text(
        jwt.issue(vector, signer=jwt_key, issuer=ISSUER, audience="urn:partenaire:api", now=now)
    )
    metadata = idp_metadata(entity_id=ENTITY, signing_keys=[saml_key], sso_url=f"{ISSUER}/saml/sso")
    (folder / "idp-metadata.xml").write_bytes(metadata)
    document = saml.issue(
        vector,
        signer=saml_key,
        issuer=ENTITY,
        audience="https://sp.example/metadata",
        recipient="https://sp.example/acs",
        now=now,
    )
    (folder / "jeton.xml").write_bytes(document)


def test_the_small_wheel_installs_without_the_server_dependencies(installed: Path) -> None:
    listed = _run(installed / "bin" / "python", "-m", "pip", "list", "--format=json")
    names = {entry["name"].lower() for entry in json.loads(listed)}
    assert "interops-token-suite" in names
    assert {"cryptography", "lxml", "xmlsec", "orjson", "pybase64"} <= names
    assert names & SERVER_ONLY == set()
    top_level = {path.name for path in (installed / "lib").glob("python3*/site-packages/*")}
    assert {"token_suite", "keys"} <= top_level
    assert not {"app.py", "idp", "partners", "rcd_store", "widget"} & top_level


def test_the_small_wheel_verifies_our_tokens_alone(installed: Path, tmp_path: Path) -> None:
    _tokens(tmp_path)
    (tmp_path / "verify.py").write_text(VERIFY)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    result = subprocess.run(
        [installed / "bin" / "python", "-I", "verify.py"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "jwt": "D0000042",
        "saml": "D0000042",
        "refused": "vi:InvalidService",
    }
