"""A fresh instance served by the production command signs tokens at once, and a worker
without a signing key answers 503 with a clear message (issue 13, item 9)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MASTER_KEY

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_db_upgrade_makes_the_first_keys(idp: Any, app: Any) -> None:
    result = idp("db", "upgrade", "--json")
    assert result.code == 0, result.err
    payload = json.loads(result.out)
    assert {key["use"] for key in payload["keys_created"]} == {"jwt", "saml"}
    client = app.test_client()
    assert client.get("/.well-known/jwks.json").get_json()["keys"]
    again = json.loads(idp("db", "upgrade", "--json").out)
    assert again["keys_created"] == []  # idempotent: existing keys are kept


CLIENT = (
    *("partner", "add", "--name", "Paie", "--client-id", "paie", "--service", "DSN"),
    *("--grant", "client_credentials", "--token-auth", "client_secret_basic", "--json"),
)
SERVICE = ("service", "add", "--code", "DSN", "--name", "DSN", "--partner", "URSSAF")
SERVICE += ("--pagm", "DECLARANT=DSN_DECL")


def test_worker_without_key_answers_503_json(app: Any, idp: Any) -> None:
    assert idp(*SERVICE).code == 0
    secret = json.loads(idp(*CLIENT).out)["client_secret"]
    client = app.test_client()
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(f"paie:{secret}".encode()).decode()},
    )
    assert token.status_code == 503
    body = token.get_json()
    assert body["error"] == "service_unavailable"
    assert "idp db upgrade" in body["error_description"]
    jwks = client.get("/.well-known/jwks.json")
    assert jwks.status_code == 503 and jwks.get_json()["error"] == "service_unavailable"


def test_worker_without_key_answers_503_page(app: Any) -> None:
    page = app.test_client().get("/saml/metadata", headers={"Accept": "text/html"})
    assert page.status_code == 503
    text = page.get_data(as_text=True)
    assert page.mimetype == "text/html" and "clé de signature" in text
    assert "Traceback" not in text and "NoActiveKey" not in text


# ---------------------------------------------------------------- end to end


def _bound_socket() -> socket.socket:
    """A socket on a free port, handed to gunicorn (``fd://``): no other test's server
    can take the port between choosing it and gunicorn binding it."""
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    bound.set_inheritable(True)
    return bound


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "idp"), *args],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn stopped"
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # worker still booting
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def production_env(app_config: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_DATABASE_URL=app_config["DATABASE_URL"],
        IDP_INSTANCE_PATH=str(tmp_path / "prod-instance"),
        IDP_MASTER_KEY=MASTER_KEY,
        IDP_SECRET_KEY="production-secret",
    )
    if "REDIS_URL" in app_config:
        env["IDP_REDIS_URL"] = app_config["REDIS_URL"]
    return env


def test_production_commands_serve_tokens(production_env: dict[str, str]) -> None:
    """``idp db upgrade``, a client registered, then ``gunicorn 'app:create_app()'``: the
    JWKS is not empty and a client_credentials token is issued."""
    env = production_env
    listener = _bound_socket()
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env["IDP_BASE_URL"] = base
    _run(env, "db", "upgrade")
    _run(env, *SERVICE)
    secret = json.loads(_run(env, *CLIENT))["client_secret"]
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "1", "-b", f"fd://{listener.fileno()}", "app:create_app()"],
        env=env,
        cwd=ROOT,
        pass_fds=(listener.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    listener.close()
    try:
        _wait(f"{base}/healthz", server)
        with urllib.request.urlopen(f"{base}/.well-known/jwks.json", timeout=60) as answer:
            assert json.load(answer)["keys"]
        basic = base64.b64encode(f"paie:{secret}".encode()).decode()
        request = urllib.request.Request(
            f"{base}/oauth/token",
            data=b"grant_type=client_credentials",
            headers={"Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200 and json.load(answer)["access_token"]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")
