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
    assert chain[::-1] == [(f"{n:04d}", f"{n - 1:04d}" if n > 1 else None) for n in range(1, 17)]
    assert migrate.MIGRATIONS.parent.name == "idp"


def test_0016_moves_the_refresh_failure_count_out_of_the_error_text(tmp_path) -> None:
    """0014's refresher wrote ``[échecs consécutifs : N]`` at the end of the error; 0016
    moves N to ``metadata_failures`` and leaves the error alone."""
    from sqlalchemy import text

    from rcd_store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        migrate.upgrade(engine, "0015")
        with engine.begin() as conn:
            for n, error in enumerate(
                ["injoignables [échecs consécutifs : 3]", "sans compte", None], start=1
            ):
                conn.execute(
                    text(
                        "INSERT INTO partner (id, name, identifier, token_format, "
                        "token_lifetime_seconds, clock_skew_seconds, claims, trusted_portal, "
                        "created_at) VALUES (:n, :name, :name, 'saml', 300, 60, '[]', 0, "
                        "'2026-12-01 00:00:00')"
                    ),
                    {"n": n, "name": f"P{n}"},
                )
                conn.execute(
                    text(
                        "INSERT INTO saml_sp (id, partner_id, entity_id, metadata_xml, acs, slo, "
                        "certificates_pem, authn_requests_signed, want_assertions_signed, "
                        "metadata_error) VALUES (:n, :n, :name, '<x/>', '[]', '[]', '[]', 0, 1, "
                        ":error)"
                    ),
                    {"n": n, "name": f"urn:sp:{n}", "error": error},
                )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT metadata_error, metadata_failures FROM saml_sp ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [("injoignables", 3), ("sans compte", 1), (None, 0)]
    finally:
        engine.dispose()
