"""what many processes share: rate limit hits, and duties only one process does at a time; the
collection filter's case-insensitive index

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediagen.db.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The collection filter became case-insensitive: index what it compares.
    op.drop_index("ix_generations_kind_collection_created", table_name="generations")
    op.create_index(
        "ix_generations_kind_lower_collection_created",
        "generations",
        ["kind", sa.text("lower(collection)"), "created_at", "id"],
    )
    op.create_table(
        "rate_hits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_hits")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rate_hits_who_at", "rate_hits", ["who", "at"])
    op.create_table(
        "duties",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_duties")),
    )


def downgrade() -> None:
    op.drop_table("duties")
    op.drop_table("rate_hits")
    op.drop_index("ix_generations_kind_lower_collection_created", table_name="generations")
    op.create_index(
        "ix_generations_kind_collection_created", "generations", ["kind", "collection", "created_at", "id"]
    )
