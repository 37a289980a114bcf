"""idp.migrate: one schema history, at the composition root, for every package's tables."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp import migrate
from rcd_store.db import Base


def test_migrations_match_the_models(engine) -> None:
    """Every model change comes with its migration (no create_all anywhere)."""
    assert migrate.is_up_to_date(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), migrate.METADATA
        )
    assert diff == []


def test_every_package_declares_its_own_tables() -> None:
    """The directory, the partner registry and the web service each own their tables;
    the signing key rows live beside the SQL key store."""
    owner = {m.local_table.name: m.class_.__module__ for m in Base.registry.mappers}
    assert set(owner) == set(migrate.METADATA.tables)
    assert owner["signing_key"] == "idp.stores.keystore"
    assert owner["seen_token"] == owner["sso_session"] == "idp.stores.models"
    assert {owner[name] for name in ("partner", "saml_sp", "oauth_client")} == {"partners.models"}
    directory = {"company", "declarant", "service", "habilitation", "audit_event", "outbox"}
    assert {owner[name] for name in directory} == {"rcd_store.models"}


def test_the_history_is_unchanged_by_the_move() -> None:
    """Databases migrated before the move upgrade without change: same ids, same chain."""
    script = migrate.ScriptDirectory.from_config(migrate.alembic_config())
    chain = [(rev.revision, rev.down_revision) for rev in script.walk_revisions("base", "heads")]
    assert chain[::-1] == [(f"{n:04d}", f"{n - 1:04d}" if n > 1 else None) for n in range(1, 16)]
    assert migrate.MIGRATIONS.parent.name == "idp"
