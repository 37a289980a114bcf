"""Operators of the service (the operator console, issue 17)

``operator``: the declarants who are staff of the operator organisation (granted and
revoked by ``idp operator``), one row each.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("declarant_id", sa.String(length=40), nullable=False),
        sa.Column("granted_at", rcd_store.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(["declarant_id"], ["declarant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("declarant_id"),
    )


def downgrade() -> None:
    op.drop_table("operator")
