"""The count of failed SAML metadata refreshes in a row (issue 17)

``saml_sp.metadata_failures``: the refreshes failed since the last success, which the
backoff doubles with; it was written inside ``metadata_error``'s text before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

#: how 0014's refresher wrote the count at the end of ``metadata_error``
_COUNT = re.compile(r" \[échecs consécutifs : (\d+)\]$")


def upgrade() -> None:
    with op.batch_alter_table("saml_sp", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("metadata_failures", sa.Integer(), nullable=False, server_default="0")
        )
    rows = sa.table(
        "saml_sp",
        sa.column("id", sa.Integer()),
        sa.column("metadata_error", sa.Text()),
        sa.column("metadata_failures", sa.Integer()),
    )
    connection = op.get_bind()
    failing = connection.execute(
        sa.select(rows.c.id, rows.c.metadata_error).where(rows.c.metadata_error.is_not(None))
    ).all()
    for row_id, error in failing:
        found = _COUNT.search(error)
        connection.execute(
            rows.update()
            .where(rows.c.id == row_id)
            .values(
                metadata_error=error[: found.start()] if found else error,
                metadata_failures=int(found.group(1)) if found else 1,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("saml_sp", schema=None) as batch_op:
        batch_op.drop_column("metadata_failures")
