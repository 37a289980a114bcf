"""Mandates with dates and establishments, pilot services, API clients (issue 16)

Placeholder reserved for its issue's work: no change yet.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
