"""worker liveness: who holds a lease, and whether that process is still alive

A worker killed with -9 leaves its jobs leased; without knowing the lease holder is dead, the
jobs waited out the whole lease (120 s by default). Each worker now registers itself and beats a
heartbeat; a claim records its holder, and reconcile takes back leases of dead holders at once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediagen.db.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("lease_owner")
    op.drop_table("workers")
