"""The one place that reads the environment: every other module receives a `Settings`."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEDIAGEN_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file in the data dir."
    )
    storage_backend: Literal["db", "fs", "s3"] = "db"
    # S3-compatible object storage (AWS S3, MinIO, R2, Ceph: pick by endpoint). Credentials come
    # from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the rest of the AWS credential chain.
    s3_bucket: str | None = Field(default=None, description="Bucket for blobs (created if missing)")
    s3_prefix: str = Field(default="blobs/", max_length=200, description="Key prefix inside the bucket")
    s3_endpoint_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:9000 for MinIO")
    s3_region: str | None = Field(default=None)
    s3_presign: bool = Field(
        default=False, description="Answer /data with a short-lived presigned redirect (bytes bypass the API)"
    )
    s3_presign_seconds: int = Field(default=300, ge=10, le=7 * 24 * 3600)
    storage_chunk_size: int = Field(default=1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None, description="Externally reachable base URL; webhooks are requested only when set."
    )
    log_level: str = "INFO"
    secret_key: str | None = Field(
        default=None, description="Signs session cookies; generated and kept in the data dir when unset."
    )

    # CLI client (`mediagen generate`)
    api_url: str | None = Field(default=None, description="Server the CLI talks to; default http://host:port")
    api_key: str | None = Field(default=None, description="X-API-Key the CLI sends")

    # Jobs
    queue_url: str | None = Field(
        default=None,
        description="huey backend: unset = SQLite file in the data dir; redis://… or postgresql://…",
    )
    workers: int = Field(default=4, ge=1, le=64)
    run_consumer: bool = Field(default=True, description="Run huey workers inside `mediagen serve`.")
    lease_seconds: int = Field(default=120, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    max_run_seconds: int = Field(
        default=3600,
        ge=10,
        description="A job with no result after this long fails (provider outputs "
        "expire after an hour anyway)",
    )
    reconcile_interval_seconds: float = Field(default=5.0, gt=0)
    offline_fallback: bool = Field(
        default=True,
        description="When a hosted model cannot be reached (no token, no Cog route), make an offline "
        "synth draft instead of refusing; the response and the asset name the model actually used",
    )
    generate_rate_limit_per_minute: int = Field(default=10, ge=0)

    # Providers
    replicate_api_token: str | None = Field(default=None, validation_alias="REPLICATE_API_TOKEN")
    replicate_base_url: str = "https://api.replicate.com/v1"
    replicate_webhook_secret: str | None = Field(default=None, validation_alias="REPLICATE_WEBHOOK_SECRET")
    download_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://replicate.delivery", "https://*.replicate.delivery"]
    )
    cog_routes: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    # Local open-weight models (engines/local; the `local` extra)
    models_dir: Path | None = Field(
        default=None,
        description="Where local models' weights are looked up, as <dir>/<repo id> "
        "(save_pretrained layout); default <data dir>/models. The Hugging Face cache is searched next",
    )
    local_device: Literal["cuda", "mps", "cpu"] | None = Field(
        default=None, description="Device for local models; default CUDA, then Apple MPS, then CPU"
    )
    local_memory_gb: float | None = Field(
        default=None,
        gt=0,
        description="Memory budget for resident local models (least recently used are unloaded "
        "past it); default: most of the device's memory",
    )
    local_batch_window_ms: int = Field(
        default=150,
        ge=0,
        le=10_000,
        description="How long the first local request waits for compatible ones to batch with",
    )
    local_max_batch: int = Field(default=8, ge=1, le=64, description="Most requests in one local batch")
    local_fast_decode: bool = Field(
        default=True,
        description="MusicGen's fast decoding path (static KV cache, captured step) where it helps; "
        "false forces the plain transformers generate",
    )

    # Studio: takes, share links, live events
    max_takes: int = Field(default=8, ge=1, le=8, description="Most takes one generate request may ask for")
    share_max_seconds: int = Field(
        default=90 * 24 * 3600, ge=60, description="Longest a share link may live (expires_in)"
    )
    events_poll_seconds: float = Field(
        default=0.5, gt=0, le=10, description="How often an open event stream looks for new events"
    )
    events_keep_days: int = Field(default=7, ge=1, description="Events older than this are pruned")

    # Kits: who drafts a brief's plan
    planner: Literal["auto", "rules", "llm"] = Field(
        default="auto",
        description="rules: the offline rule-based planner; llm: a language model on Replicate writes "
        "the scenes and prompts (falls back to rules on any error); auto: llm when a Replicate token is set",
    )
    planner_model: str = Field(
        default="meta/meta-llama-3-8b-instruct",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The official Replicate language model the LLM planner asks (owner/name)",
    )
    planner_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="How long the LLM planner may take before the rules take over"
    )

    # Limits
    max_download_bytes_audio: int = 200 * 1024 * 1024
    max_download_bytes_image: int = 50 * 1024 * 1024
    max_download_bytes_video: int = 1024 * 1024 * 1024
    max_upload_bytes: int = 100 * 1024 * 1024
    max_request_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="The largest body of any other request (JSON, forms); uploads, PUT /api/blobs "
        "and webhooks have their own caps",
    )

    @field_validator("download_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("cog_routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mediagen.db').resolve()}"

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    def max_download_bytes(self, kind: str) -> int:
        """The size cap for one downloaded or fetched file of `kind`."""
        caps = {
            "audio": self.max_download_bytes_audio,
            "image": self.max_download_bytes_image,
            "video": self.max_download_bytes_video,
        }
        return caps[kind]

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
