"""Alembic environment: runs on the connection handed over by idp.migrate.

Every package of the service declares its own tables; :mod:`idp.migrate`
imports them all, so autogenerate compares the whole schema.
"""

from __future__ import annotations

from alembic import context

from idp.migrate import METADATA

config = context.config
target_metadata = METADATA


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("the migrations run through idp.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
