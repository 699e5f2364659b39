"""drop generations.output_url

Nothing ever read it: the outputs a provider points at are kept in `metadata.outputs`, with
their roles and content types, and that is what ingest downloads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("output_url")


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("output_url", sa.Text(), nullable=True))
