"""Outbox delivery: idempotency, retries with backoff, secrets purged once sent (issue 16)

Placeholder reserved for its issue's work: no change yet.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
