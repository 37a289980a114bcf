"""Administration: invitations, suspension, access delay of habilitations (issue 16)

Placeholder reserved for its issue's work: no change yet.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
