"""Schema migrations with Alembic (``idp db upgrade``).

The one schema history of the service: the directory's tables (``rcd_store``), the
partner registry's (``partners``) and the web application's (:mod:`idp.stores`).
Each package declares its own tables; their migrations live here, with the
composition root, so that no library names the packages built on top of it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

import idp.console.models
import idp.events.models
import idp.stores.keystore
import idp.stores.models  # noqa: F401  (sessions, OAuth codes and tokens, the replay cache)
import partners.models  # noqa: F401  (the partner registry)
import rcd_store.enrolment.models  # codes, enrolments, join requests
import rcd_store.models  # noqa: F401  (the directory)
from rcd_store.db import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Every table of the service, each declared by the package that owns it.
METADATA: MetaData = Base.metadata


def alembic_config() -> Config:
    """The Alembic configuration of ``idp/migrations`` (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to ``revision`` (all migrations by default)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_up_to_date(engine: Engine) -> bool:
    """True when the database is at the newest revision (an old one is refused by serve)."""
    return current_revision(engine) == head_revision()


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision against ``engine`` (developers only)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
