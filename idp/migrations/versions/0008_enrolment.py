"""Company enrolment: one-time codes and links, enrolment and join requests (issue 16);
a habilitation's access delay (``habilitation.effective_at``)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, rcd_store.db.UTCDateTime(timezone=True), nullable=nullable)


def _request_table(name: str, *extra: sa.Column[Any]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("establishment_id", sa.Integer(), nullable=False),
        sa.Column("declarant_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        _when("created_at", nullable=False),
        _when("decided_at", nullable=True),
        *extra,
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["company.id"],
            name=op.f(f"fk_{name}_company_id_company"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["declarant_id"],
            ["declarant.id"],
            name=op.f(f"fk_{name}_declarant_id_declarant"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["establishment_id"],
            ["establishment.id"],
            name=op.f(f"fk_{name}_establishment_id_establishment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_company_id"), name, ["company_id"], unique=False)
    op.create_index(op.f(f"ix_{name}_declarant_id"), name, ["declarant_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "one_time_code",
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        _when("created_at", nullable=False),
        _when("expires_at", nullable=False),
        _when("used_at", nullable=True),
        sa.PrimaryKeyConstraint("secret_hash", name=op.f("pk_one_time_code")),
    )
    op.create_index(
        "ix_one_time_code_subject", "one_time_code", ["purpose", "subject"], unique=False
    )
    op.create_index(
        op.f("ix_one_time_code_expires_at"), "one_time_code", ["expires_at"], unique=False
    )
    _request_table("enrolment")
    _request_table("join_request", sa.Column("decided_by", sa.String(length=80), nullable=True))
    with op.batch_alter_table("habilitation", schema=None) as batch_op:
        batch_op.add_column(_when("effective_at", nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("habilitation", schema=None) as batch_op:
        batch_op.drop_column("effective_at")
    for name in ("join_request", "enrolment"):
        op.drop_index(op.f(f"ix_{name}_declarant_id"), table_name=name)
        op.drop_index(op.f(f"ix_{name}_company_id"), table_name=name)
        op.drop_table(name)
    op.drop_index(op.f("ix_one_time_code_expires_at"), table_name="one_time_code")
    op.drop_index("ix_one_time_code_subject", table_name="one_time_code")
    op.drop_table("one_time_code")
