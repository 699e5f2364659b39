"""brief to campaign kit: client brands, structured briefs, kit plans, campaign budgets, real
cost and performance figures per asset, models added from Replicate

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediagen.db.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENERATION_COLUMNS = (
    ("actual_cost_usd", sa.Float()),
    ("compute_seconds", sa.Float()),
    ("prompt_sent", sa.Text()),
    ("views", sa.BigInteger()),
    ("clicks", sa.BigInteger()),
    ("conversions", sa.BigInteger()),
    ("plan_id", sa.Integer()),
    ("plan_item", sa.String(length=32)),
)
BRIEF_COLUMNS = (
    ("objective", sa.Text()),
    ("audience", sa.Text()),
    ("key_messages", sa.JSON()),
    ("tone", sa.String(length=200)),
    ("channels", sa.JSON()),
    ("lengths", sa.JSON()),
    ("must_haves", sa.JSON()),
)


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch rebuild): a rebuilt `generations` would lose its AUTOINCREMENT.
    for name, type_ in GENERATION_COLUMNS:
        op.add_column("generations", sa.Column(name, type_, nullable=True))
    op.create_index("ix_generations_plan_id", "generations", ["plan_id"])
    for name, type_ in BRIEF_COLUMNS:
        op.add_column("briefs", sa.Column(name, type_, nullable=True))
    op.add_column("clients", sa.Column("brand", sa.JSON(), nullable=True))
    op.add_column("campaigns", sa.Column("budget_usd", sa.Float(), nullable=True))
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brief_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("planner", sa.String(length=8), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("estimate_usd", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("approved_by", sa.String(length=32), nullable=True),
        sa.Column("approved_at", mediagen.db.base.UTCDateTime(), nullable=True),
        sa.Column("run_by", sa.String(length=32), nullable=True),
        sa.Column("run_started_at", mediagen.db.base.UTCDateTime(), nullable=True),
        sa.Column("finished_at", mediagen.db.base.UTCDateTime(), nullable=True),
        sa.Column("created_at", mediagen.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mediagen.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["brief_id"], ["briefs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_plans_brief_created", "plans", ["brief_id", "created_at"])
    op.create_index("ix_plans_status", "plans", ["status"])
    op.create_table(
        "added_models",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("version", sa.String(length=80), nullable=True),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("added_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", mediagen.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mediagen.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("added_models")
    op.drop_index("ix_plans_status", table_name="plans")
    op.drop_index("ix_plans_brief_created", table_name="plans")
    op.drop_table("plans")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("budget_usd")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("brand")
    with op.batch_alter_table("briefs") as batch:
        for name, _ in BRIEF_COLUMNS:
            batch.drop_column(name)
    op.drop_index("ix_generations_plan_id", table_name="generations")
    # Plain DROP COLUMNs (SQLite 3.35+): a batch rebuild would lose the expression index.
    for name, _ in reversed(GENERATION_COLUMNS):
        op.drop_column("generations", name)
