"""Security events to partners (RFC 8417, 8935, 8936) and back-channel logout (issue 17)

``security_event``: the outbox of SETs and logout tokens, one row per event and receiver,
numbered per receiver (``security_event_stream`` holds each receiver's last number);
``partner.event_receiver_url`` (RFC 8935 push receiver) and
``oauth_client.backchannel_logout_uri`` (OpenID Connect Back-Channel Logout 1.0).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import rcd_store.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("receiver", sa.String(length=220), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("created_at", rcd_store.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", rcd_store.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", rcd_store.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partner.id"],
            name=op.f("fk_security_event_partner_id_partner"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_event")),
        sa.UniqueConstraint("jti", name=op.f("uq_security_event_jti")),
        sa.UniqueConstraint("receiver", "seq", name=op.f("uq_security_event_receiver_seq")),
    )
    with op.batch_alter_table("security_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_security_event_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_security_event_receiver"), ["receiver"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_security_event_settled_at"), ["settled_at"], unique=False
        )
    op.create_table(
        "security_event_stream",
        sa.Column("receiver", sa.String(length=220), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("receiver", name=op.f("pk_security_event_stream")),
    )
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_receiver_url", sa.String(length=2000), nullable=True))
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("backchannel_logout_uri", sa.String(length=2000), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.drop_column("backchannel_logout_uri")
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.drop_column("event_receiver_url")
    op.drop_table("security_event_stream")
    with op.batch_alter_table("security_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_security_event_settled_at"))
        batch_op.drop_index(batch_op.f("ix_security_event_receiver"))
        batch_op.drop_index(batch_op.f("ix_security_event_partner_id"))
    op.drop_table("security_event")
