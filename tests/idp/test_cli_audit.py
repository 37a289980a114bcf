"""``idp audit checkpoint`` and ``idp audit verify --checkpoint`` (issue 13, item 6)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import delete, select

from idp.tokens.audit_checkpoint import TYP
from keys.generate import generate_key
from keys.model import KeyUse
from rcd_store.models import AuditEvent, AuditKey
from tests.factories import SIRET_A, SIRET_A2
from tests.idp.cli_support import ok


@pytest.fixture
def trail(idp: Any, tmp_path: Path) -> Path:
    """A few audited changes and a checkpoint of them."""
    ok(idp, "db upgrade")
    ok(idp, f"company add --siret {SIRET_A} --name 'Boulangerie Dupont'")
    ok(idp, f"company add --siret {SIRET_A2} --name 'Boulangerie Dupont'")
    path = tmp_path / "audit.checkpoint"
    ok(idp, f"audit checkpoint {path}")
    return path


def test_checkpoint_is_written_and_verifies(idp: Any, trail: Path) -> None:
    result = ok(idp, f"audit verify --checkpoint {trail}")
    assert "journal intègre" in result.out and "conforme au point de contrôle" in result.out
    payload = json.loads(ok(idp, f"audit verify --checkpoint {trail} --json").out)
    assert payload["ok"] is True and payload["checkpoint"]["events"] == payload["events"]
    header = jwt.get_unverified_header(trail.read_text().strip())
    assert header["typ"] == TYP


def test_checkpoint_json_output(idp: Any, tmp_path: Path) -> None:
    ok(idp, "db upgrade")
    path = tmp_path / "cp.jws"
    payload = json.loads(ok(idp, f"audit checkpoint {path} --json").out)
    assert payload["file"] == str(path) and payload["segments"]
    assert all(len(head["hash"]) == 64 for head in payload["segments"].values())


def test_later_events_still_verify(idp: Any, trail: Path) -> None:
    ok(idp, "service add --code DSN --name DSN --partner URSSAF --pagm DECLARANT=DSN_DECL")
    ok(idp, f"audit verify --checkpoint {trail}")


def test_truncated_newest_events_are_reported(idp: Any, trail: Path, session: Any) -> None:
    newest = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    session.execute(delete(AuditEvent).where(AuditEvent.id == newest.id))
    session.commit()
    ok(idp, "audit verify")  # the cut-off chain is consistent in itself
    result = idp("audit", "verify", "--checkpoint", str(trail))
    assert result.code == 1 and "derniers événements coupés" in result.err
    payload = json.loads(idp("audit", "verify", "--checkpoint", str(trail), "--json").out)
    assert payload["ok"] is False and any("coupés" in p for p in payload["problems"])


def test_deleted_segment_is_reported(idp: Any, trail: Path, session: Any) -> None:
    newest = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    session.execute(delete(AuditEvent).where(AuditEvent.segment == newest.segment))
    session.commit()
    result = idp("audit", "verify", "--checkpoint", str(trail))
    assert result.code == 1 and "segment supprimé" in result.err


def _forge(session: Any) -> None:
    """Edit the first company event and recompute every later hash without the key."""
    from tests.rcd_store.test_audit import _rewrite_from

    events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.segment, AuditEvent.seq)))
    _rewrite_from(session, events, 2, json.dumps({"siret": "00000000000000"}))


def test_edit_and_recompute_is_reported(idp: Any, trail: Path, session: Any) -> None:
    _forge(session)
    result = idp("audit", "verify")
    assert result.code == 1 and "altéré" in result.err
    assert idp("audit", "verify", "--checkpoint", str(trail)).code == 1


def test_replaced_key_and_forged_trail_are_reported(idp: Any, trail: Path, session: Any) -> None:
    """An attacker who deletes the key row and rewrites the trail in plain SHA-256 gets a
    trail that verifies alone, never against the checkpoint."""
    session.execute(delete(AuditKey))
    session.commit()
    _forge(session)
    result = idp("audit", "verify", "--checkpoint", str(trail))
    assert result.code == 1 and "clé du journal remplacée" in result.err


def _flip_signature(text: str) -> str:
    head, payload, signature = text.strip().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 1
    return ".".join([head, payload, base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")])


def _claims(text: str) -> dict[str, Any]:
    return jwt.decode(text.strip(), options={"verify_signature": False})


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_flip_signature, "signature invalide"),
        (
            lambda text: jwt.encode(
                _claims(text) | {"events": 999},
                generate_key(KeyUse.JWT, now=_now(), alg="ES256").private_key,
                algorithm="ES256",
                headers={"typ": TYP, "kid": jwt.get_unverified_header(text.strip())["kid"]},
            ),
            "signature invalide",
        ),
        (
            lambda text: jwt.encode(
                _claims(text),
                (key := generate_key(KeyUse.JWT, now=_now(), alg="ES256")).private_key,
                algorithm="ES256",
                headers={"typ": TYP, "kid": key.kid},
            ),
            "clé de signature inconnue",
        ),
        (lambda text: "pas un point de contrôle", "pas un point de contrôle signé"),
    ],
    ids=["altered-signature", "resigned-with-our-kid", "foreign-key", "garbage"],
)
def test_bad_checkpoint_is_refused(idp: Any, trail: Path, tamper: Any, reason: str) -> None:
    trail.write_text(tamper(trail.read_text()))
    result = idp("audit", "verify", "--checkpoint", str(trail))
    assert result.code != 0 and "point de contrôle refusé" in result.err and reason in result.err


def test_a_token_is_not_a_checkpoint(idp: Any, trail: Path, app: Any) -> None:
    """A JWS we signed for another use (another ``typ``) is refused."""
    from idp.tokens.signing import keyring

    key = keyring(app).active(KeyUse.JWT)
    token = jwt.encode(
        _claims(trail.read_text()),
        key.private_key,
        algorithm=key.alg,
        headers={"kid": key.kid, "typ": "at+jwt"},
    )
    trail.write_text(token)
    result = idp("audit", "verify", "--checkpoint", str(trail))
    assert result.code != 0 and "typ" in result.err


def test_checkpoint_of_a_broken_trail_is_refused(idp: Any, trail: Path, session: Any) -> None:
    _forge(session)
    result = idp("audit", "checkpoint", str(trail.with_name("other")))
    assert result.code != 0 and "journal non intègre" in result.err
    assert not trail.with_name("other").exists()


def test_unreadable_checkpoint_file(idp: Any, tmp_path: Path) -> None:
    result = idp("audit", "verify", "--checkpoint", str(tmp_path / "absent"))
    assert result.code != 0 and "point de contrôle illisible" in result.err


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_existing_unkeyed_trail_is_kept_by_db_upgrade(
    idp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration path: a trail written before the chain was keyed (revision 0006, plain
    SHA-256) still verifies after ``idp db upgrade``, as legacy up to the heads sealed
    with the new key, and can no longer be rewritten."""
    from sqlalchemy.orm import Session

    from idp import migrate
    from rcd_store.db import make_engine
    from tests.rcd_store.test_audit import _legacy_events, _rewrite_from

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine, "0006")
        with Session(engine) as old:
            legacy = [event.id for event in _legacy_events(old, 3)]
        monkeypatch.setenv("IDP_DATABASE_URL", url)
        ok(idp, "db upgrade")
        ok(idp, f"company add --siret {SIRET_A} --name 'Boulangerie Dupont'")
        assert "journal intègre" in ok(idp, "audit verify").out
        with Session(engine) as old:
            rows = [old.get(AuditEvent, event_id) for event_id in legacy]
            _rewrite_from(old, rows, 2, '{"i":99}')
        result = idp("audit", "verify")
        assert result.code == 1 and "réécrit depuis la clé du journal" in result.err
    finally:
        engine.dispose()


def test_missing_key_row_is_reported(idp: Any, trail: Path, session: Any) -> None:
    """A trail whose key row was deleted is not silently checked as unkeyed."""
    session.execute(delete(AuditKey))
    session.commit()
    result = idp("audit", "verify")
    assert result.code == 1 and "journal sans clé de chaînage" in result.err


def test_embedded_database_is_keyed_when_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded SQLite of an earlier version, migrated by any command, keeps its
    unkeyed trail verifiable (the chain key is made with the migration)."""
    from sqlalchemy.orm import Session

    from idp import migrate
    from idp.cli.main import main
    from rcd_store import audit
    from rcd_store.db import make_engine
    from tests.rcd_store.test_audit import _legacy_events

    instance = tmp_path / "instance"
    instance.mkdir()
    engine = make_engine(f"sqlite:///{instance / 'idp.sqlite3'}")
    try:
        migrate.upgrade(engine, "0006")
        with Session(engine) as old:
            _legacy_events(old, 2)
    finally:
        engine.dispose()
    for name in ("IDP_DATABASE_URL", "IDP_MASTER_KEY", "IDP_SECRET_KEY", "IDP_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(instance))
    audit.new_writer_segment()
    assert main(["audit", "verify"]) == 0


def test_checkpoint_to_stdout(idp: Any, tmp_path: Path) -> None:
    ok(idp, "db upgrade")
    printed = ok(idp, "audit checkpoint -").out
    assert jwt.get_unverified_header(printed.strip())["typ"] == TYP
    saved = tmp_path / "from-stdout.jws"
    saved.write_text(printed)
    ok(idp, f"audit verify --checkpoint {saved}")
    payload = json.loads(ok(idp, "audit checkpoint - --json").out)
    assert jwt.get_unverified_header(payload["checkpoint"])["typ"] == TYP
