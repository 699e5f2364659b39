"""studio: takes, review, tags, full-text search, comments, share links, events

Generations gain their seed and take group, the team's title/notes/tags/star/rating and a review
status (existing rows start `draft`), and a per-generation event counter. New tables: asset tags
(for filtering), review history, time-coded comments, share links and the event log behind
`GET /api/events`. Search is FTS5 on SQLite (an external-content index kept by triggers) and a GIN
expression index on PostgreSQL; neither is in the ORM metadata, so the drift test skips them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mediagen.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keep in step with mediagen/generations/search.py (the query must use the same expression).
PG_DOCUMENT = (
    "to_tsvector('english', coalesce(prompt, '') || ' ' || coalesce(title, '') || ' ' || "
    "coalesce(notes, '') || ' ' || coalesce(CAST(tags AS text), ''))"
)

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE generations_fts USING fts5("
    "prompt, title, notes, tags, content='generations', content_rowid='id', tokenize='porter unicode61')",
    "INSERT INTO generations_fts(rowid, prompt, title, notes, tags) "
    "SELECT id, prompt, coalesce(title, ''), coalesce(notes, ''), coalesce(tags, '') FROM generations",
    "CREATE TRIGGER generations_fts_insert AFTER INSERT ON generations BEGIN "
    "INSERT INTO generations_fts(rowid, prompt, title, notes, tags) VALUES "
    "(new.id, new.prompt, coalesce(new.title, ''), coalesce(new.notes, ''), coalesce(new.tags, '')); END",
    "CREATE TRIGGER generations_fts_delete AFTER DELETE ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt, title, notes, tags) VALUES "
    "('delete', old.id, old.prompt, coalesce(old.title, ''), coalesce(old.notes, ''), "
    "coalesce(old.tags, '')); END",
    "CREATE TRIGGER generations_fts_update AFTER UPDATE OF prompt, title, notes, tags ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt, title, notes, tags) VALUES "
    "('delete', old.id, old.prompt, coalesce(old.title, ''), coalesce(old.notes, ''), "
    "coalesce(old.tags, '')); "
    "INSERT INTO generations_fts(rowid, prompt, title, notes, tags) VALUES "
    "(new.id, new.prompt, coalesce(new.title, ''), coalesce(new.notes, ''), coalesce(new.tags, '')); END",
]
SQLITE_FTS_DROP = [
    "DROP TRIGGER IF EXISTS generations_fts_update",
    "DROP TRIGGER IF EXISTS generations_fts_delete",
    "DROP TRIGGER IF EXISTS generations_fts_insert",
    "DROP TABLE IF EXISTS generations_fts",
]


def _gallery_index(column: str) -> None:
    op.create_index(
        f"ix_generations_kind_{column}_created", "generations", ["kind", column, "created_at", "id"]
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # Plain ADD COLUMNs (no batch rebuild): a rebuilt `generations` would lose its AUTOINCREMENT.
    for column in (
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("take_group", sa.String(length=32), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("favorite", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("review_status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("event_seq", sa.Integer(), server_default="0", nullable=False),
    ):
        op.add_column("generations", column)
    for column in ("review_status", "take_group", "favorite"):
        _gallery_index(column)
    op.create_table(
        "asset_tags",
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_asset_tags_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("generation_id", "tag", name=op.f("pk_asset_tags")),
    )
    op.create_index("ix_asset_tags_tag", "asset_tags", ["tag", "generation_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("generation_id", "seq", name="uq_events_generation_seq"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_created", "events", ["created_at"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=False),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor_user", sa.String(length=32), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("share_id", sa.Integer(), nullable=True),
        sa.Column("at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_review_events_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_review_events_generation_id"), "review_events", ["generation_id"])
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("at_seconds", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("author_user", sa.String(length=32), nullable=True),
        sa.Column("share_id", sa.Integer(), nullable=True),
        sa.Column("created_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_comments_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_comments_generation_id"), "comments", ["generation_id"])
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("asset_kind", sa.String(length=8), nullable=True),
        sa.Column("asset_id", sa.Integer(), nullable=True),
        sa.Column("take_group", sa.String(length=32), nullable=True),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", mediagen.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_shares_token_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_shares_take_group"), "shares", ["take_group"])
    op.create_index(op.f("ix_shares_campaign_id"), "shares", ["campaign_id"])
    op.create_index(op.f("ix_shares_client_id"), "shares", ["client_id"])
    if dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_generations_search ON generations USING gin ({PG_DOCUMENT})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_FTS_DROP:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_generations_search")
    for table in ("shares", "comments", "review_events", "events", "asset_tags"):
        op.drop_table(table)
    for column in ("favorite", "take_group", "review_status"):
        op.drop_index(f"ix_generations_kind_{column}_created", table_name="generations")
    with op.batch_alter_table("generations", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for column in (
            "event_seq",
            "review_status",
            "rating",
            "favorite",
            "tags",
            "notes",
            "title",
            "take_group",
            "seed",
        ):
            batch.drop_column(column)
