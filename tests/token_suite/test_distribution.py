"""The partners' distribution, ``interops-token-suite``: built from ``packaging/token-suite``
(the same source files as the identity provider's), installed alone in a fresh virtual
environment, it verifies our tokens there and pulls none of the server's dependencies;
the examples of ``docs/partners.md`` run there as written, against a live operator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import venv
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
DOCS = ROOT / "docs" / "partners.md"
#: the documented examples that run as written (the others need your key or a framework)
RUNNABLE = ("## Vérifier en moins de dix lignes", "## Dans votre application web")
ENTITY = "urn:interops:73282932000074:idp:test"

VERIFY = """
import json, sys
from token_suite import Trust, jwt, saml
from token_suite.errors import InteropsError

assert "/site-packages/" in jwt.__file__, jwt.__file__
import token_suite._speedups  # the C module was built by the wheel
trust = Trust.from_jwks("jwks.json", issuer="https://idp.example")
vector = jwt.verify(open("jeton.jwt").read(), trust=trust, audience="urn:partenaire:api")
document = open("jeton-sp.xml", "rb").read()
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


def _tokens(folder: Path, issuer: str = ISSUER) -> dict[str, bytes]:
    """Our documents and tokens, issued now, written where the partner's script reads
    them; returns the public documents an operator at ``issuer`` would serve."""
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
    published = json.dumps(jwks([jwt_key])).encode()
    (folder / "jwks.json").write_bytes(published)
    for name, typ in (("jeton.jwt", "JWT"), ("acces.jwt", "at+jwt")):
        token = jwt.issue(
            vector, signer=jwt_key, issuer=issuer, audience="urn:partenaire:api", now=now, typ=typ
        )
        (folder / name).write_text(token)
    metadata = idp_metadata(entity_id=ENTITY, signing_keys=[saml_key], sso_url=f"{issuer}/saml/sso")
    (folder / "idp-metadata.xml").write_bytes(metadata)
    for audience, name in (
        ("https://sp.example/metadata", "jeton-sp.xml"),
        ("https://partenaire.example/metadata", "jeton.xml"),
    ):
        document = saml.issue(
            vector, signer=saml_key, issuer=ENTITY, audience=audience,
            recipient="https://sp.example/acs", now=now,
        )  # fmt: skip
        (folder / name).write_bytes(document)
    discovery = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "saml_metadata_uri": f"{issuer}/saml/metadata",
    }
    return {
        "/.well-known/openid-configuration": json.dumps(discovery).encode(),
        "/.well-known/jwks.json": published,
        "/saml/metadata": metadata,
    }


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A live operator on loopback serving its discovery, JWKS and metadata, and a folder
    holding tokens it issued."""
    served: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Cache-Control", "public, max-age=300")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_port}"
    served.update(_tokens(tmp_path, base))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def documented_examples() -> list[str]:
    """The first Python block of each runnable section of docs/partners.md."""
    text = DOCS.read_text("utf-8")
    examples = []
    for heading in RUNNABLE:
        section = text[text.index(heading) :]
        found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
        assert found is not None, heading
        examples.append(found.group(1))
    return examples


def _run_isolated(installed: Path, folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    (folder / "example.py").write_text(script)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder)}
    return subprocess.run(
        [installed / "bin" / "python", "-I", "example.py"],
        check=False,
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


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
    result = _run_isolated(installed, tmp_path, VERIFY)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "jwt": "D0000042",
        "saml": "D0000042",
        "refused": "vi:InvalidService",
    }


@pytest.mark.parametrize("index", range(len(RUNNABLE)), ids=["verify", "web"])
def test_the_documented_examples_run_as_written(
    installed: Path, operator: tuple[str, Path], index: int
) -> None:
    base, folder = operator
    example = documented_examples()[index]
    assert 'Trust.from_issuer("https://idp.example")' in example
    result = _run_isolated(installed, folder, example.replace(ISSUER, base))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if index == 0:  # the JWT and the SAML jeton, verified: no error line
        assert lines[0].startswith("D0000042 ('DSN_DECL',)") and lines[1].startswith("D0000042 ")
        assert len(lines) == 2
    else:
        assert lines == ["appel de D0000042 PAGM ('DSN_DECL',)"]
