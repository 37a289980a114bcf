"""Migration 0009 on a database with messages queued before it: they stay pending, each
with its own idempotency key; the way back drops the delivery records only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import text

from idp import migrate
from rcd_store.db import make_engine


def test_queued_messages_survive_the_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        migrate.upgrade(engine, "0008")
        now = datetime.now(UTC).isoformat()
        with engine.begin() as conn:
            for n in range(2):
                conn.execute(
                    text(
                        "INSERT INTO outbox (channel, kind, recipient, subject, body_sealed,"
                        " created_at, attempts) VALUES ('email', 'password_reset', :to, 'Lien',"
                        " :body, :now, 0)"
                    ),
                    {"to": f"p{n}@x.example", "body": b"scelle", "now": now},
                )
        migrate.upgrade(engine, "0009")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT state, idempotency_key FROM outbox")).all()
        assert [state for state, _ in rows] == ["pending", "pending"]
        keys = {key for _, key in rows}
        assert len(keys) == 2 and all(len(key) == 32 for key in keys)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE outbox SET body_sealed = NULL WHERE recipient = 'p0@x.example'")
            )
        with engine.begin() as conn:
            config = migrate.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0008")
        with engine.connect() as conn:
            left = conn.execute(text("SELECT recipient FROM outbox")).scalars().all()
        assert left == ["p1@x.example"]
    finally:
        engine.dispose()
