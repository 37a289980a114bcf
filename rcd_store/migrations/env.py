"""Alembic environment: runs on the connection handed over by rcd_store.migrate."""

from __future__ import annotations

import importlib

from alembic import context

import rcd_store.models  # noqa: F401  (registers the directory tables)
from rcd_store.db import Base

# The application's other tables (partner registry, sessions) share this schema
# history; they are imported only to let autogenerate compare them.
for module in ("partners.models", "idp.stores.models"):
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        pass

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("rcd_store migrations run through rcd_store.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
