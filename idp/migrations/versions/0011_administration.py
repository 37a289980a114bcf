"""Administration: a company's establishments listed in SIRET order (issue 16)

The administration pages list and search a company's establishments (thousands) by
SIRET: one index on (company_id, siret) serves the page and the prefix search.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_establishment_company_siret", "establishment", ["company_id", "siret"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_establishment_company_siret", table_name="establishment")
