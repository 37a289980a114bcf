"""Services are found by a folded partner key (indexed), not by scanning names

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_key", sa.String(length=100), nullable=True))
        batch_op.drop_index("ix_service_partner_name")
        batch_op.create_index("ix_service_partner_key", ["partner_key"], unique=False)
    connection = op.get_bind()
    service = sa.table(
        "service",
        sa.column("id", sa.Integer),
        sa.column("partner_name", sa.String),
        sa.column("partner_key", sa.String),
    )
    rows = connection.execute(sa.select(service.c.id, service.c.partner_name)).all()
    for service_id, name in rows:
        if name:
            connection.execute(
                service.update()
                .where(service.c.id == service_id)
                .values(partner_key=" ".join(name.split()).casefold())
            )


def downgrade() -> None:
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.drop_index("ix_service_partner_key")
        batch_op.create_index("ix_service_partner_name", ["partner_name"], unique=False)
        batch_op.drop_column("partner_key")
