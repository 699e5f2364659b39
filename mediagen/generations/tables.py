"""The `generations` table: one row per asset of any kind, the source of truth for its job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from mediagen.db.base import Base, UTCDateTime, utcnow


def _gallery_index(column: str) -> Index:
    # Every gallery filter is `kind = ? AND <column> = ? ORDER BY created_at DESC, id DESC`.
    return Index(f"ix_generations_kind_{column}_created", "kind", column, "created_at", "id")


class Generation(Base):
    __tablename__ = "generations"
    __table_args__ = (
        Index("ix_generations_kind_created", "kind", "created_at", "id"),
        _gallery_index("client_id"),
        _gallery_index("campaign_id"),
        _gallery_index("brief_id"),
        _gallery_index("status"),
        _gallery_index("model_id"),
        # The collection filter is case-insensitive (`lower(collection) = lower(?)`).
        Index(
            "ix_generations_kind_lower_collection_created",
            "kind",
            func.lower(text("collection")),
            "created_at",
            "id",
        ),
        _gallery_index("review_status"),
        _gallery_index("take_group"),
        _gallery_index("favorite"),
        Index("ix_generations_status_lease", "status", "lease_until"),
        Index("ix_generations_status_poll", "status", "next_poll_at"),
        UniqueConstraint("idempotency_scope", "idempotency_key", name="uq_generations_idempotency"),
        # Ids are never handed out twice: a new asset must not take over a deleted one's URLs.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    prompt: Mapped[str] = mapped_column(Text)
    model_id: Mapped[str] = mapped_column(String(128))
    engine: Mapped[str] = mapped_column(String(160))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    provider_input: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    provider_ref: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    provider_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    collection: Mapped[str | None] = mapped_column(String(128), nullable=True)
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=True
    )
    brief_id: Mapped[str | None] = mapped_column(ForeignKey("briefs.id", ondelete="SET NULL"), nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    blob_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    download_attempted: Mapped[bool] = mapped_column(Boolean, default=False)
    download_retries: Mapped[int] = mapped_column(Integer, default=0)
    download_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)  # the catalog's estimate
    # What it really cost: the provider's compute seconds times its hardware's price (hosted), 0
    # for local and synth engines; null until known. `compute_seconds` is the provider's
    # `predict_time`, or this machine's device time for local models.
    actual_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    compute_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The prompt as sent to the model, when it differs from `prompt` (the client's brand applied).
    prompt_sent: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Campaign performance figures the team reports back (CTR is derived, never stored).
    views: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    clicks: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    conversions: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The kit plan and deliverable this asset was made for (kits/): a plan run is idempotent by item.
    plan_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    plan_item: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The process holding the lease (`workers.id`), so a dead holder's jobs are taken back at once.
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A running inline job's progress (0–1) and what it is doing ("loading model", "generating").
    progress: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress_note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Loudness of an audio or video asset's sound, measured at ingest (BS.1770 / EBU R 128).
    loudness_lufs: Mapped[float | None] = mapped_column(Float, nullable=True)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float, nullable=True)
    loudness_range: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Takes: the seed the engine was given (always stored: an explicit one reproduces a result,
    # a fresh random one makes a new take) and the request's group of takes (`tg_…`).
    seed: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    take_group: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Review: what the team writes about an asset and where it stands.
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # null: none yet
    favorite: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    review_status: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft")
    # The last event's per-generation sequence number (`events.seq`), bumped in the writing
    # transaction, so the row lock orders a generation's events even across processes.
    event_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Where the key is unique: the API key that sent it (or the user's web session).
    idempotency_scope: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # sha256 of the request it was first used with: a reuse with another body is refused.
    idempotency_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Who asked: the user id. Scopes idempotency keys and lets the UI show "mine".
    owner_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Unguessable per-generation token for engines that cannot sign their webhooks (Cog).
    webhook_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Derivation(Base):
    """Extra files made from or alongside an asset: waveform peaks, thumbnail, poster, spectrogram,
    and any further outputs of a model that returned several files."""

    __tablename__ = "derivations"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Source(Base):
    """What an asset was made from: a stored asset named in its inputs (a composition's clips and
    music, a melody, a start image). No foreign key to the source: deleting a source never touches
    what was made from it (its bytes are its own); the link just no longer resolves."""

    __tablename__ = "sources"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(String(200), primary_key=True)  # clips[2].video_id, audio…
    source_id: Mapped[int] = mapped_column(Integer, index=True)
    source_kind: Mapped[str] = mapped_column(String(16))


class Export(Base):
    """One source asset rendered for several channels: the renditions are compositions grouped
    under this export (`ExportItem`), downloadable together as a zip."""

    __tablename__ = "exports"
    __table_args__ = ({"sqlite_autoincrement": True},)  # an export id is never reused

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(Integer)
    source_kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExportItem(Base):
    __tablename__ = "export_items"

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation_id: Mapped[int] = mapped_column(Integer, index=True)


class AssetTag(Base):
    """One tag of an asset, for the `tag=` filter (the row's `tags` list is what is shown; both
    are written together by the review service)."""

    __tablename__ = "asset_tags"
    __table_args__ = (Index("ix_asset_tags_tag", "tag", "generation_id"),)

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class Event(Base):
    """A change of a generation, kept so a live stream can resume (`Last-Event-ID` is `id`).

    No foreign key: the `deleted` event of an asset outlives it. `client_id` is copied so a
    stream filters by tenant without a join."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("generation_id", "seq", name="uq_events_generation_seq"),
        Index("ix_events_created", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    generation_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateHit(Base):
    """One counted generation request of a key, for the limit shared by every API process
    (generations/ratelimit.py); rows older than the window are deleted as the key is checked."""

    __tablename__ = "rate_hits"
    __table_args__ = (Index("ix_rate_hits_who_at", "who", "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    who: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)  # wall-clock seconds: comparable across processes


class Duty(Base):
    """A periodic chore one process of the deployment does at a time (reconcile, blob gc): the
    holder renews `until`; when it dies, another process takes the duty once `until` passes."""

    __tablename__ = "duties"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """Seen `webhook-id`s, so a retried delivery is acknowledged without being applied twice."""

    __tablename__ = "webhook_deliveries"

    webhook_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Worker(Base):
    """A process that runs jobs, with its heartbeat (see generations/workers.py)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
