"""The audit chain is keyed (sealed key table); outbox bodies are sealed and expire

Outbox rows written before this revision hold their body (password reset links) in
clear and were never sent (no sender existed): they are deleted, not carried over.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_key",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", rcd_store.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_key")),
    )
    op.execute("DELETE FROM outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("body")
        batch_op.add_column(sa.Column("body_sealed", sa.LargeBinary(), nullable=False))
        batch_op.add_column(
            sa.Column("expires_at", rcd_store.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_outbox_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_expires_at"))
        batch_op.drop_column("expires_at")
        batch_op.drop_column("body_sealed")
        batch_op.add_column(sa.Column("body", sa.Text(), nullable=False))
    op.drop_table("audit_key")
