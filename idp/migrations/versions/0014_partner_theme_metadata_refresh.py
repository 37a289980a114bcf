"""Partner theme for the widget, SAML metadata refreshed from a URL (issue 17)

``partner.theme`` (colours, logo, wording in French and English); on ``saml_sp``:
``metadata_url``, ``metadata_signing_pem`` (the partner's key for its metadata's signature),
``metadata_fetched_at``, ``metadata_next_fetch_at`` and ``metadata_error``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("theme", sa.JSON(), nullable=True))
    with op.batch_alter_table("saml_sp", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metadata_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(
            sa.Column("metadata_signing_pem", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("metadata_fetched_at", rcd_store.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "metadata_next_fetch_at", rcd_store.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("metadata_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("saml_sp", schema=None) as batch_op:
        batch_op.drop_column("metadata_error")
        batch_op.drop_column("metadata_next_fetch_at")
        batch_op.drop_column("metadata_fetched_at")
        batch_op.drop_column("metadata_signing_pem")
        batch_op.drop_column("metadata_url")
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.drop_column("theme")
