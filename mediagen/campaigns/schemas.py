"""API shapes for clients, campaigns and briefs (Create / Update / Out / list envelope)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
IdField = Field(default=None, pattern=ID_PATTERN, description="Optional; generated when omitted")
CampaignStatus = Literal["draft", "active", "archived"]
# A reference to an existing record: never empty (an empty id names nothing), at most an id long.
Ref = Annotated[str, Field(min_length=1, max_length=64)]

MAX_DIRECTION_BYTES = 16 * 1024
MAX_JSON_KEYS = 100  # keys of one object, items of one list
MAX_JSON_DEPTH = 5  # nested objects/lists below the top-level one


MIN_INT64, MAX_INT64 = -(2**63), 2**63 - 1


def _json_shape(value: Any, depth: int, max_depth: int) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT64 <= value <= MAX_INT64:
        # Such a number may name a row (an asset id among a model's inputs); no database holds it.
        raise PydanticCustomError("json_int_too_large", "integers must fit in 64 bits")
    if isinstance(value, dict | list):
        if depth > max_depth:
            raise PydanticCustomError("json_too_deep", "nested deeper than {max} levels", {"max": max_depth})
        if len(value) > MAX_JSON_KEYS:
            raise PydanticCustomError(
                "json_too_many_items", "more than {max} keys or items in one place", {"max": MAX_JSON_KEYS}
            )
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            _json_shape(item, depth + 1, max_depth)


def bounded_json(
    max_bytes: int, max_depth: int = MAX_JSON_DEPTH
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A validator for a free-form JSON object: at most `max_bytes` as compact JSON, `max_depth`
    levels below the top and `MAX_JSON_KEYS` keys or items in any one place. Free-form objects end
    up in database rows that pages and lists read back, so an unbounded one costs every reader."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        _json_shape(value, 0, max_depth)
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except ValueError:
            raise PydanticCustomError(
                "json_not_finite", "numbers must be finite (no NaN or Infinity)"
            ) from None
        size = len(text.encode())
        if size > max_bytes:
            raise PydanticCustomError(
                "json_too_large",
                "at most {max} bytes of JSON ({size} sent)",
                {"max": max_bytes, "size": size},
            )
        return value

    return check


Direction = Annotated[dict[str, Any], AfterValidator(bounded_json(MAX_DIRECTION_BYTES))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


HexColour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb")]
BrandWord = Annotated[str, Field(min_length=1, max_length=60)]
Aspect = Literal["16:9", "9:16", "1:1", "4:5"]
LoudnessPreset = Literal["social", "broadcast_eu", "broadcast_us", "podcast"]


class BrandMusic(_In):
    genres: list[BrandWord] = Field(default_factory=list, max_length=10)
    moods: list[BrandWord] = Field(default_factory=list, max_length=10)
    bpm: tuple[int, int] | None = Field(default=None, description="Tempo range [low, high], 40–240")


class Brand(_In):
    """A client's brand guidelines, applied to every generation filed under the client
    (campaigns/branding.py) and read by the kit planner (kits/)."""

    palette: list[HexColour] = Field(default_factory=list, max_length=12)
    style_keywords: list[BrandWord] = Field(default_factory=list, max_length=20)
    avoid: list[BrandWord] = Field(
        default_factory=list,
        max_length=30,
        description="Never in a prompt sent; a negative prompt where the model has one",
    )
    music: BrandMusic | None = None
    aspects: list[Aspect] = Field(default_factory=list, max_length=4)
    loudness: LoudnessPreset | None = None
    logo_image_id: int | None = Field(default=None, ge=1, le=MAX_INT64, description="A stored image")
    fonts: list[BrandWord] = Field(default_factory=list, max_length=5)


class ClientCreate(_In):
    id: str | None = IdField
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class ClientUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class CampaignCreate(_In):
    id: str | None = IdField
    client_id: Ref
    name: str = Field(min_length=1, max_length=200)
    goal: str | None = Field(default=None, max_length=5000)
    status: CampaignStatus = "draft"


class CampaignUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    goal: str | None = Field(default=None, max_length=5000)
    status: CampaignStatus | None = None


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    name: str
    goal: str | None
    status: str
    created_at: datetime
    updated_at: datetime


MAX_BRIEF_TEXT = 20000
DIRECTION_DOC = (
    f"Structured creative direction (mood, tempo, palette, …): at most {MAX_DIRECTION_BYTES // 1024} KiB "
    f"of JSON, {MAX_JSON_DEPTH} levels deep, {MAX_JSON_KEYS} keys or items in any one place"
)


class BriefCreate(_In):
    id: str | None = IdField
    client_id: Ref | None = Field(default=None, description="Implied by campaign_id when omitted")
    campaign_id: Ref | None = None
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(default="", max_length=MAX_BRIEF_TEXT)
    direction: Direction = Field(default_factory=dict, description=DIRECTION_DOC)


class BriefUpdate(_In):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    text: str | None = Field(default=None, max_length=MAX_BRIEF_TEXT)
    direction: Direction | None = Field(default=None, description=DIRECTION_DOC)
    campaign_id: Ref | None = Field(default=None, description="Move the brief to this campaign")


class BriefOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    campaign_id: str | None
    title: str
    text: str
    direction: dict[str, Any]
    created_at: datetime
    updated_at: datetime


EXCERPT_CHARS = 280


class BriefSummary(BaseModel):
    """A brief in a list: what a picker or a table shows. The whole text and the direction are
    only in `GET /api/briefs/{id}`, so a list never reads megabytes of them."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    campaign_id: str | None
    title: str
    text: str = Field(description=f"The start of the text (up to {EXCERPT_CHARS} characters)")
    text_truncated: bool = Field(description="The text goes on beyond `text`")
    created_at: datetime
    updated_at: datetime


class ClientList(BaseModel):
    clients: list[ClientOut]
    count: int
    total: int


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]
    count: int
    total: int


class BriefList(BaseModel):
    briefs: list[BriefSummary]
    count: int
    total: int


class KindStats(BaseModel):
    total: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)
    duration_seconds: float = 0.0
    cost_usd: float = 0.0


class Stats(BaseModel):
    scope: Literal["client", "campaign"]
    id: str
    total: int
    by_kind: dict[str, KindStats]
    by_status: dict[str, int]
    duration_seconds: float
    cost_usd: float
