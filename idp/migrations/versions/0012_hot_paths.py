"""Hot paths: cache generations (issue 18)

``cache_generation``: named counters bumped with every change to the tables they guard,
read by each process to drop its caches (``idp.stores.generations``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_generation",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_generation")),
    )


def downgrade() -> None:
    op.drop_table("cache_generation")
