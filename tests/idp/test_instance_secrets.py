"""Nothing under the instance folder is readable by others, and no private key lies there
in clear (issue 13, items 13 and 16)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from idp.demo import directory as demo
from idp.demo.partner import create_partner_app
from tests.conftest import MASTER_KEY

CLEAR_KEY_MARKERS = (
    b"-----BEGIN PRIVATE KEY-----",
    b"-----BEGIN RSA PRIVATE KEY-----",
    b"-----BEGIN EC PRIVATE KEY-----",
)


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def _modes_open_to_others(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (itself included) that its owner does not keep alone."""
    loose = {}
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            loose[str(path.relative_to(folder.parent))] = oct(mode)
    return loose


def test_demo_setup_leaves_no_clear_private_key(app: Any) -> None:
    """The demo partner's SAML key stays in memory: no PEM private key in clear on disk."""
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    demo.load(app)
    site = demo.partner_site(app, base_url="http://partenaire.localhost")
    demo.register_partner_site(app, site)
    partner = create_partner_app(site, secret_key="partner-test")
    assert partner.test_client().get("/saml/metadata").status_code == 200
    instance = Path(app.instance_path)
    clear = [
        str(path)
        for path in _files(instance)
        if any(marker in path.read_bytes() for marker in CLEAR_KEY_MARKERS)
    ]
    assert clear == []


def test_demo_partner_key_is_the_registered_one(app: Any) -> None:
    """Registration and the partner app use the same in-memory key (same metadata)."""
    demo.load(app)
    site = demo.partner_site(app, base_url="http://partenaire.localhost")
    demo.register_partner_site(app, site)
    partner = create_partner_app(site, secret_key="partner-test")
    from idp.stores.db import database
    from partners.models import SamlServiceProvider

    with database(app).sessions() as session:
        registered = session.query(SamlServiceProvider).filter_by(entity_id=site.entity_id).one()
        certificate = "".join(registered.certificates_pem[0].splitlines()[1:-1])
    metadata = partner.test_client().get("/saml/metadata").get_data(as_text=True)
    assert certificate in "".join(metadata.split())


def test_old_clear_demo_key_is_removed(app: Any) -> None:
    """A key file left in clear by an earlier version is deleted on the next start."""
    site = demo.partner_site(app, base_url="http://partenaire.localhost")
    demo.load(app)
    site.folder.mkdir(parents=True)
    leftover = site.folder / "saml-key.pem"
    leftover.write_bytes(b"-----BEGIN PRIVATE KEY-----\nold\n-----END PRIVATE KEY-----\n")
    demo.register_partner_site(app, site)
    assert not leftover.exists()


@pytest.fixture
def embedded_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The embedded default: SQLite and master key generated in a fresh instance folder."""
    instance = tmp_path / "instance"
    for name in ("IDP_DATABASE_URL", "IDP_MASTER_KEY", "IDP_SECRET_KEY", "IDP_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(instance))
    from rcd_store import audit

    audit.new_writer_segment()
    return instance


def test_cli_creates_a_private_instance_folder(embedded_env: Path) -> None:
    """``idp db upgrade`` then a write on the embedded SQLite: folder 0700, files 0600
    (database, -wal/-shm, master key, secret), whatever the umask."""
    from idp.cli.main import main

    previous = os.umask(0o022)
    try:
        assert main(["db", "upgrade"]) == 0
        assert main(["company", "add", "--siret", "73282932000074", "--name", "Opérateur"]) == 0
        assert main(["audit", "verify"]) == 0
    finally:
        os.umask(previous)
    names = {path.name for path in _files(embedded_env)}
    assert {"idp.sqlite3", "master.key", "secret.key"} <= names
    assert _modes_open_to_others(embedded_env) == {}


def test_existing_loose_instance_is_tightened(embedded_env: Path) -> None:
    """An instance folder made by an earlier version (0755, database 0644) is closed."""
    from idp.cli.main import main

    embedded_env.mkdir(mode=0o755)
    os.chmod(embedded_env, 0o755)
    database = embedded_env / "idp.sqlite3"
    database.touch()
    os.chmod(database, 0o644)
    assert main(["db", "upgrade"]) == 0
    assert _modes_open_to_others(embedded_env) == {}


def test_app_with_given_master_key_keeps_folder_private(tmp_path: Path) -> None:
    """The database's -wal and -shm files, while SQLite holds them open, are 0600 too."""
    from sqlalchemy import text

    from idp.factory import create_app
    from idp.stores.db import database

    instance = tmp_path / "inst"
    previous = os.umask(0o022)
    try:
        app = create_app({"INSTANCE_PATH": str(instance), "MASTER_KEY": MASTER_KEY})
        database(app).upgrade()
        with database(app).engine.connect() as connection:
            connection.execute(text("CREATE TABLE probe (x INTEGER)"))
            connection.commit()
            names = {path.name for path in _files(instance)}
            loose = _modes_open_to_others(instance)
        database(app).engine.dispose()
    finally:
        os.umask(previous)
    assert {"idp.sqlite3", "idp.sqlite3-wal", "idp.sqlite3-shm"} <= names
    assert loose == {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_demo_leaves_a_private_folder_without_clear_keys(tmp_path: Path) -> None:
    """The real ``idp serve --demo`` (identity provider and demo partner) on a fresh
    folder, umask 022: folder 0700, every file 0600, no PEM private key in clear."""
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_INSTANCE_PATH"] = str(instance)
    port, partner_port = _free_port(), _free_port()
    command = [str(Path(sys.executable).parent / "idp"), "serve", "--demo"]
    command += ["--port", str(port), "--partner-port", str(partner_port)]
    previous = os.umask(0o022)
    try:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    finally:
        os.umask(previous)
    try:
        _wait_for(f"http://127.0.0.1:{partner_port}/saml/metadata", server)
        _wait_for(f"http://127.0.0.1:{port}/healthz", server)
        clear = [p for p in _files(instance) if any(m in p.read_bytes() for m in CLEAR_KEY_MARKERS)]
        loose = _modes_open_to_others(instance)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert (instance / "idp.sqlite3").exists() and clear == []
    assert loose == {}


def _wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, "idp serve --demo stopped"
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered")
