"""Mandates with kinds, dates and establishments; rights carried by a mandate; pilot services

A mandate may now be granted again to the same mandataire after it ended (the unique
pair is replaced by an index); its habilitations name it (``habilitation.mandate_id``)
and count only while it lives. ``pilot_company`` lists the companies a pilot service
is open to.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mandate", schema=None) as batch_op:
        batch_op.drop_constraint("uq_mandate_client_company_id_firm_company_id", type_="unique")
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="cabinet")
        )
        batch_op.add_column(
            sa.Column("establishments", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column(
                "starts_at",
                rcd_store.db.UTCDateTime(timezone=True),
                nullable=False,
                server_default="1970-01-01 00:00:00+00:00",
            )
        )
        batch_op.add_column(
            sa.Column("ends_at", rcd_store.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("ended_at", rcd_store.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("ended_by", sa.String(length=80), nullable=True))
        batch_op.create_index(
            "ix_mandate_pair", ["client_company_id", "firm_company_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_mandate_firm_company_id"), ["firm_company_id"], unique=False
        )
    with op.batch_alter_table("mandate", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)
        batch_op.alter_column("establishments", server_default=None)
        batch_op.alter_column("starts_at", server_default=None)
    with op.batch_alter_table("habilitation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mandate_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_habilitation_mandate_id"), ["mandate_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_habilitation_mandate_id_mandate"),
            "mandate",
            ["mandate_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_table(
        "pilot_company",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("created_at", rcd_store.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f("fk_pilot_company_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["service.id"],
            name=op.f("fk_pilot_company_service_id_service"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot_company")),
        sa.UniqueConstraint(
            "service_id", "company_id", name=op.f("uq_pilot_company_service_id_company_id")
        ),
    )
    with op.batch_alter_table("pilot_company", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pilot_company_company_id"), ["company_id"])


def downgrade() -> None:
    with op.batch_alter_table("pilot_company", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pilot_company_company_id"))
    op.drop_table("pilot_company")
    with op.batch_alter_table("habilitation", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_habilitation_mandate_id_mandate"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_habilitation_mandate_id"))
        batch_op.drop_column("mandate_id")
    op.execute(
        "DELETE FROM mandate WHERE id NOT IN "
        "(SELECT MIN(id) FROM mandate GROUP BY client_company_id, firm_company_id)"
    )
    with op.batch_alter_table("mandate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mandate_firm_company_id"))
        batch_op.drop_index("ix_mandate_pair")
        for column in ("ended_by", "ended_at", "ends_at", "starts_at", "establishments", "kind"):
            batch_op.drop_column(column)
        batch_op.create_unique_constraint(
            batch_op.f("uq_mandate_client_company_id_firm_company_id"),
            ["client_company_id", "firm_company_id"],
        )
