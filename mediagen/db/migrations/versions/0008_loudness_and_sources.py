"""loudness of every asset's sound, what each asset was made from, and channel exports

Integrated loudness, true peak and loudness range are measured at ingest for audio and video; the
`sources` table links an asset to the stored assets its inputs named (lineage: "made from" and
"used in"), without a foreign key to the source so deleting one never breaks what was made.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediagen.db.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("loudness_lufs", sa.Float(), nullable=True))
        batch.add_column(sa.Column("true_peak_dbtp", sa.Float(), nullable=True))
        batch.add_column(sa.Column("loudness_range", sa.Float(), nullable=True))
    op.create_table(
        "sources",
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_sources_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("generation_id", "field", name=op.f("pk_sources")),
    )
    op.create_index(op.f("ix_sources_source_id"), "sources", ["source_id"], unique=False)
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("owner_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_exports_client_id"), "exports", ["client_id"], unique=False)
    op.create_table(
        "export_items",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_export_items_export_id_exports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("export_id", "channel", name=op.f("pk_export_items")),
    )
    op.create_index(op.f("ix_export_items_generation_id"), "export_items", ["generation_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_export_items_generation_id"), table_name="export_items")
    op.drop_table("export_items")
    op.drop_index(op.f("ix_exports_client_id"), table_name="exports")
    op.drop_table("exports")
    op.drop_index(op.f("ix_sources_source_id"), table_name="sources")
    op.drop_table("sources")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("loudness_range")
        batch.drop_column("true_peak_dbtp")
        batch.drop_column("loudness_lufs")
