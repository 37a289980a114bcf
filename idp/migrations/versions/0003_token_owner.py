"""issued tokens remember how their owner authenticated (refresh tokens)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issued_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acr", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("auth_time", rcd_store.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("issued_token", schema=None) as batch_op:
        batch_op.drop_column("auth_time")
        batch_op.drop_column("acr")
