"""The words every layer shares: media kinds, generation statuses, and each kind's names.

One module, so that adding a kind or a status is one edit here (plus its derivers in
`generations/ingest.py`) and the API, web pages, catalog, engines and pipeline all follow.
The enums are `StrEnum`s: they compare equal to the plain strings stored in the database and
sent over JSON, so rows and payloads need no conversion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    AUDIO = "audio"
    IMAGE = "image"
    VIDEO = "video"


class Status(StrEnum):
    """Our view of a generation (the provider's own is `ProviderStatus`)."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class ReviewStatus(StrEnum):
    """Where the team (or a client on a share link) stands on an asset. Any step may be
    skipped: a draft can be approved directly."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class ProviderStatus(StrEnum):
    """A remote prediction's lifecycle, as Replicate and Cog report it."""

    STARTING = "starting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"


# The largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL, so a larger number
# in a URL or a body names nothing on any database (and PostgreSQL refuses to compare an int4 id
# with it: "integer out of range", a 500 before this bound).
MAX_ID = 2**31 - 1

# The engine name of assets a user uploaded rather than generated (no engine makes them).
UPLOAD_ENGINE = "upload"

ACTIVE: tuple[Status, ...] = (Status.PENDING, Status.PROCESSING)
TERMINAL: frozenset[Status] = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED})
PROVIDER_TERMINAL: frozenset[ProviderStatus] = frozenset(
    {ProviderStatus.SUCCEEDED, ProviderStatus.FAILED, ProviderStatus.CANCELED, ProviderStatus.ABORTED}
)


@dataclass(frozen=True)
class KindInfo:
    """How one kind is named in each place it shows up."""

    kind: Kind
    path: str  # API URL segment and list key: /api/audio, /api/images, /api/videos
    id_field: str  # the seed's response field for the new id
    url_field: str  # the seed's item field pointing at the bytes
    label: str  # gallery heading
    gallery: str  # web gallery URL segment, in the product's words (/music)
    noun: str  # one asset, in a sentence ("track")
    derivations: tuple[str, ...]  # made once at ingest

    def public(self) -> dict[str, Any]:
        """The table the web UI's script reads instead of keeping its own copy."""
        return {k: (list(v) if isinstance(v, tuple) else str(v)) for k, v in asdict(self).items()}


KINDS: dict[Kind, KindInfo] = {
    Kind.AUDIO: KindInfo(
        Kind.AUDIO, "audio", "audio_id", "audio_url", "Music", "music", "track", ("waveform",)
    ),
    Kind.IMAGE: KindInfo(
        Kind.IMAGE, "images", "image_id", "image_url", "Images", "images", "image", ("thumbnail",)
    ),
    Kind.VIDEO: KindInfo(
        Kind.VIDEO, "videos", "video_id", "video_url", "Videos", "videos", "video", ("poster", "thumbnail")
    ),
}
BY_GALLERY: dict[str, KindInfo] = {info.gallery: info for info in KINDS.values()}

DERIVATION_TYPES: dict[str, str] = {
    "waveform": "application/json",
    "thumbnail": "image/webp",
    "poster": "image/webp",
}


def kind_info(kind: str) -> KindInfo | None:
    """The KindInfo for a kind spelled as a string (a URL segment, a row), or None."""
    try:
        return KINDS[Kind(kind)]
    except ValueError:
        return None
