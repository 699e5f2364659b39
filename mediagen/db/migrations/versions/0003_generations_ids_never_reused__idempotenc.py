"""generations ids never reused; idempotency keys scoped

- SQLite hands a deleted row's id to the next insert unless the table is AUTOINCREMENT: the next
  generation would take over a deleted asset's URLs (which are cached as immutable). PostgreSQL's
  sequences never reuse ids already.
- Idempotency keys were unique per user, so two keys of one user (limited to different clients)
  shared them. They are now unique per scope (the API key, or the user's web session), and each row
  keeps a hash of the request so a reuse with a different body is refused, not answered.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _batch(autoincrement: bool) -> Any:
    sqlite = op.get_bind().dialect.name == "sqlite"
    return op.batch_alter_table(
        "generations",
        # SQLite can only add AUTOINCREMENT by rebuilding the table (foreign keys are off while
        # migrating, so the rebuild does not cascade into derivations).
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": autoincrement},
    )


def upgrade() -> None:
    with _batch(True) as batch:
        batch.add_column(sa.Column("idempotency_scope", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("idempotency_hash", sa.String(length=64), nullable=True))
        batch.drop_constraint("uq_generations_idempotency", type_="unique")
        batch.create_unique_constraint("uq_generations_idempotency", ["idempotency_scope", "idempotency_key"])
    # Keys used before keep answering within the scope they had: the user.
    op.execute("UPDATE generations SET idempotency_scope = owner_key WHERE idempotency_key IS NOT NULL")


def downgrade() -> None:
    with _batch(False) as batch:
        batch.drop_constraint("uq_generations_idempotency", type_="unique")
        batch.create_unique_constraint("uq_generations_idempotency", ["owner_key", "idempotency_key"])
        batch.drop_column("idempotency_hash")
        batch.drop_column("idempotency_scope")
