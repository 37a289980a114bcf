"""Company enrolment: one-time codes and links, enrolment and join requests (issue 16)

Placeholder reserved for its issue's work: no change yet.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
