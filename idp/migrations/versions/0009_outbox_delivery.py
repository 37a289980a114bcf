"""Outbox delivery: idempotency, retries with backoff, secrets purged once sent (issue 16)

The outbox keeps a row per message as its delivery record: a state, an idempotency key
(unique), the next attempt's time, the claim of the worker sending it, when it was
closed and the last error; the sealed body becomes optional (wiped once sent). Messages
already queued stay pending, each given its key.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import secrets

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _when(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, rcd_store.db.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch_op.add_column(_when("next_attempt_at"))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(_when("claimed_at"))
        batch_op.add_column(_when("closed_at"))
        batch_op.add_column(sa.Column("last_error", sa.String(length=400), nullable=True))
    connection = op.get_bind()
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer()),
        sa.column("state", sa.String()),
        sa.column("idempotency_key", sa.String()),
    )
    for (row_id,) in connection.execute(sa.select(outbox.c.id)).all():
        connection.execute(
            outbox.update()
            .where(outbox.c.id == row_id)
            .values(state="pending", idempotency_key=secrets.token_hex(16))
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("state", existing_type=sa.String(length=12), nullable=False)
        batch_op.alter_column("idempotency_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("body_sealed", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.create_index(batch_op.f("ix_outbox_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_outbox_idempotency_key"), ["idempotency_key"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE body_sealed IS NULL")  # records without a body
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_outbox_idempotency_key"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_outbox_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_outbox_state"))
        batch_op.alter_column("body_sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column("last_error")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("state")
