from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import idp.stores.models  # noqa: F401
import partners.models  # noqa: F401
from rcd_store import migrate
from rcd_store.db import Base


def test_migrations_match_the_models(engine) -> None:
    """Every model change comes with its migration (no create_all anywhere)."""
    assert migrate.is_up_to_date(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
