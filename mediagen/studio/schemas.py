"""Request and response shapes of the review API: edits to an asset, its review history, comments
and bulk actions."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from mediagen.campaigns.schemas import MAX_INT64, Ref
from mediagen.generations.gallery import MAX_TAG, normalise_tag
from mediagen.generations.schemas import AssetId
from mediagen.vocabulary import Kind, ReviewStatus

MAX_TITLE = 200
MAX_NOTES = 5000
MAX_TAGS = 32
MAX_COLLECTION = 128
MAX_COMMENT = 2000
MAX_AUTHOR = 200
MAX_BULK = 500
LINE_BREAKS = frozenset("\t\n\r")


def plain_text(value: str, *, lines: bool) -> str:
    """Refuses control characters (line breaks and tabs only where `lines`) and lone surrogates:
    nothing a person types, and PostgreSQL cannot store a NUL."""
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cs") and not (lines and ch in LINE_BREAKS):
            raise PydanticCustomError("control_character", "control characters are not allowed")
    return value


def _line(value: str) -> str:
    return plain_text(value, lines=False)


def _lines(value: str) -> str:
    return plain_text(value, lines=True)


def normalise_tags(tags: list[str]) -> list[str]:
    """Tags as stored: trimmed, lower-case, each once, in the order first given."""
    return list(dict.fromkeys(normalise_tag(t) for t in tags))


Line = Annotated[str, AfterValidator(_line)]
Lines = Annotated[str, AfterValidator(_lines)]  # may hold line breaks and tabs
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG), AfterValidator(_line)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(normalise_tags)]
Rating = Annotated[int, Field(ge=1, le=5, strict=True)]
Count = Annotated[int, Field(ge=0, le=MAX_INT64, strict=True)]


class AssetPatch(BaseModel):
    """What the team changes about an asset; only the fields sent change.

    `null` clears title, notes, tags, rating and the filing (as does "" for the text fields);
    `favorite` and `review_status` always have a value. Moving the client clears a campaign and
    brief not given with it, moving the campaign clears the brief, and a campaign or brief brings
    its own client (as when generating). `views`, `clicks` and `conversions` are the campaign's
    performance figures for the asset, as the team reports them (null clears); its CTR is derived."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    title: Line | None = Field(default=None, max_length=MAX_TITLE)
    notes: Lines | None = Field(default=None, max_length=MAX_NOTES)
    tags: Tags | None = Field(
        default=None,
        description=f"At most {MAX_TAGS}, each 1–{MAX_TAG} characters; stored trimmed, lower-case, "
        "each once, in the order given",
    )
    # None only while not sent: a null sent is refused by the type (these always have a value).
    favorite: bool = Field(default=None, strict=True, description="The star")  # type: ignore[assignment]
    rating: Rating | None = Field(default=None, description="1–5; null clears")
    review_status: ReviewStatus = Field(  # type: ignore[assignment]
        default=None, description="Any move is allowed; each is kept in the history"
    )
    client_id: Ref | None = None
    campaign_id: Ref | None = None
    brief_id: Ref | None = None
    collection: Line | None = Field(default=None, max_length=MAX_COLLECTION)
    views: Count | None = Field(default=None, description="Times it was seen (≥ 0); null clears")
    clicks: Count | None = Field(default=None, description="Clicks on it (≥ 0); null clears")
    conversions: Count | None = Field(default=None, description="Conversions it led to (≥ 0); null clears")


class HistoryEntry(BaseModel):
    """One move of the review status."""

    model_config = ConfigDict(populate_by_name=True)

    from_: ReviewStatus = Field(alias="from")
    to: ReviewStatus
    actor_user: str | None = Field(description="The user who moved it (null for a share-link reviewer)")
    actor_name: str | None = Field(description="Their email, or the name a share-link reviewer gave")
    share_id: int | None = Field(description="The share link it came through, if any")
    at: datetime


class HistoryOut(BaseModel):
    history: list[HistoryEntry]
    count: int


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    at: float | None = Field(
        default=None,
        ge=0,
        description="Seconds into the audio or video (0 to its duration); leave out for the whole "
        "asset. Images take none",
    )
    text: Annotated[Lines, Field(min_length=1, max_length=MAX_COMMENT)]


class CommentOut(BaseModel):
    id: int
    at: float | None
    text: str
    author_name: str = Field(description="The user's email, or the name a share-link reviewer gave")
    author_user: str | None = Field(description="The user's id; null for a share-link reviewer")
    share_id: int | None
    created_at: datetime


class CommentsOut(BaseModel):
    comments: list[CommentOut]
    count: int


class BulkAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    IN_REVIEW = "in_review"
    DRAFT = "draft"
    FAVORITE = "favorite"
    UNFAVORITE = "unfavorite"
    TAG = "tag"
    UNTAG = "untag"
    MOVE = "move"
    DELETE = "delete"


class BulkItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    id: AssetId


class BulkRequest(BaseModel):
    """One action on many assets, all or nothing. `tag` goes with tag/untag; the filing fields
    with move (the same rules as PATCH: a campaign brings its client, moving it clears the brief)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    items: list[BulkItem] = Field(min_length=1, max_length=MAX_BULK)
    action: BulkAction
    tag: Tag | None = None
    client_id: Ref | None = None
    campaign_id: Ref | None = None
    brief_id: Ref | None = None
    collection: Line | None = Field(default=None, max_length=MAX_COLLECTION)


class BulkOut(BaseModel):
    action: BulkAction
    count: int = Field(description="How many assets the action covered (each once)")
    items: list[BulkItem]
