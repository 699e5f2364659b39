"""API shapes for clients, campaigns and briefs (Create / Update / Out / list envelope)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from mediagen.campaigns.channels import CHANNELS, Aspect
from mediagen.vocabulary import MAX_ID

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
LoudnessPreset = Literal["social", "broadcast_eu", "broadcast_us", "podcast"]


MIN_BPM, MAX_BPM = 40, 240


class BrandMusic(_In):
    genres: list[BrandWord] = Field(default_factory=list, max_length=10)
    moods: list[BrandWord] = Field(default_factory=list, max_length=10)
    bpm: tuple[int, int] | None = Field(
        default=None, description=f"Tempo range [low, high], {MIN_BPM}–{MAX_BPM}, low ≤ high"
    )

    @field_validator("bpm")
    @classmethod
    def _tempo_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        # Checked as one range, so the error names `bpm` rather than one end of it.
        if value is None:
            return None
        low, high = value
        if not (MIN_BPM <= low <= MAX_BPM and MIN_BPM <= high <= MAX_BPM):
            raise PydanticCustomError(
                "bpm_range", "tempo must be within {low}–{high} bpm", {"low": MIN_BPM, "high": MAX_BPM}
            )
        if low > high:
            raise PydanticCustomError("bpm_order", "the low tempo must not be above the high one")
        return value


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
    logo_image_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="A stored image")
    fonts: list[BrandWord] = Field(default_factory=list, max_length=5)


BRAND_DOC = (
    "The client's brand, applied to every generation filed under the client. "
    "On update it is replaced whole; null clears it"
)


class ClientCreate(_In):
    id: str | None = IdField
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    brand: Brand | None = Field(default=None, description=BRAND_DOC)


class ClientUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    brand: Brand | None = Field(default=None, description=BRAND_DOC)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str | None
    brand: Brand | None = None
    created_at: datetime
    updated_at: datetime


MAX_BUDGET_USD = 1e9
Budget = Annotated[float | None, Field(ge=0, le=MAX_BUDGET_USD, allow_inf_nan=False)]
BUDGET_DOC = (
    "What the campaign may spend on generations, in USD; null: no budget. A generation or plan run "
    "that would exceed what is left is refused (409)"
)


class CampaignCreate(_In):
    id: str | None = IdField
    client_id: Ref
    name: str = Field(min_length=1, max_length=200)
    goal: str | None = Field(default=None, max_length=5000)
    status: CampaignStatus = "draft"
    budget_usd: Budget = Field(default=None, description=BUDGET_DOC)


class CampaignUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    goal: str | None = Field(default=None, max_length=5000)
    status: CampaignStatus | None = None
    budget_usd: Budget = Field(default=None, description=BUDGET_DOC)


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    name: str
    goal: str | None
    status: str
    budget_usd: float | None = None
    created_at: datetime
    updated_at: datetime


class BudgetOut(BaseModel):
    """A campaign's money: `spent_usd` is what its completed generations cost (the provider's
    figure where known, else the estimate), `committed_usd` the estimate of those still running,
    `remaining_usd` the budget less both (null without a budget; negative once overridden)."""

    budget_usd: float | None
    spent_usd: float
    committed_usd: float
    remaining_usd: float | None


MAX_BRIEF_TEXT = 20000
DIRECTION_DOC = (
    f"Structured creative direction (mood, tempo, palette, …): at most {MAX_DIRECTION_BYTES // 1024} KiB "
    f"of JSON, {MAX_JSON_DEPTH} levels deep, {MAX_JSON_KEYS} keys or items in any one place"
)


def _known_channel(name: str) -> str:
    if name not in CHANNELS:
        raise PydanticCustomError(
            "unknown_channel",
            "unknown channel '{name}'; channels: {known}",
            {"name": name, "known": ", ".join(CHANNELS)},
        )
    return name


MAX_BRIEF_ITEMS = 20
MAX_LENGTHS = 10
MAX_SPOT_SECONDS = 600
BriefLine = Annotated[str, Field(min_length=1, max_length=300)]
ChannelName = Annotated[str, AfterValidator(_known_channel)]
SpotLength = Annotated[float, Field(ge=1, le=MAX_SPOT_SECONDS, allow_inf_nan=False)]


class BriefFields(_In):
    """The structured direction a kit planner works from; every field optional. On update a
    field sent replaces the stored one (a list whole); null clears it."""

    objective: str | None = Field(default=None, max_length=2000, description="What the work must achieve")
    audience: str | None = Field(default=None, max_length=2000, description="Who it speaks to")
    key_messages: list[BriefLine] | None = Field(default=None, max_length=MAX_BRIEF_ITEMS)
    tone: str | None = Field(default=None, max_length=200)
    channels: list[ChannelName] | None = Field(
        default=None, max_length=len(CHANNELS), description=f"Export channels: {', '.join(CHANNELS)}"
    )
    lengths: list[SpotLength] | None = Field(
        default=None, max_length=MAX_LENGTHS, description=f"Spot lengths in seconds (1–{MAX_SPOT_SECONDS})"
    )
    must_haves: list[BriefLine] | None = Field(default=None, max_length=MAX_BRIEF_ITEMS)

    @field_validator("channels", "lengths")
    @classmethod
    def _once_each(cls, value: list[Any] | None) -> list[Any] | None:
        # A channel or length named twice would plan its spots twice.
        return None if value is None else list(dict.fromkeys(value))


BRIEF_FIELDS = tuple(BriefFields.model_fields)


class BriefCreate(BriefFields):
    id: str | None = IdField
    client_id: Ref | None = Field(default=None, description="Implied by campaign_id when omitted")
    campaign_id: Ref | None = None
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(default="", max_length=MAX_BRIEF_TEXT)
    direction: Direction = Field(default_factory=dict, description=DIRECTION_DOC)


class BriefUpdate(BriefFields):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    text: str | None = Field(default=None, max_length=MAX_BRIEF_TEXT)
    direction: Direction | None = Field(default=None, description=DIRECTION_DOC)
    campaign_id: Ref | None = Field(default=None, description="Move the brief to this campaign")


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


class BriefOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    campaign_id: str | None
    title: str
    text: str
    direction: dict[str, Any]
    objective: str | None = None
    audience: str | None = None
    key_messages: list[str] = Field(default_factory=list)
    tone: str | None = None
    channels: list[str] = Field(default_factory=list)
    lengths: list[float] = Field(default_factory=list)
    must_haves: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    _lists = field_validator("key_messages", "channels", "lengths", "must_haves", mode="before")(
        _none_is_empty
    )


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
    channels: list[str] = Field(default_factory=list, description="The export channels it asks for")
    created_at: datetime
    updated_at: datetime

    _channels = field_validator("channels", mode="before")(_none_is_empty)


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
    actual_cost_usd: float = 0.0
    spent_usd: float = 0.0


class Performance(BaseModel):
    """Campaign figures set on assets (`PATCH`), summed; CTR is clicks per view."""

    views: int = 0
    clicks: int = 0
    conversions: int = 0
    ctr: float | None = Field(default=None, description="clicks / views; null without views")


class Stats(BaseModel):
    scope: Literal["client", "campaign"]
    id: str
    total: int
    by_kind: dict[str, KindStats]
    by_status: dict[str, int]
    duration_seconds: float
    cost_usd: float = Field(description="The catalog's estimate, summed over every asset")
    actual_cost_usd: float = Field(description="The provider's own figures, where recorded")
    spent_usd: float = Field(description="Completed assets: the actual cost where known, else the estimate")
    committed_usd: float = Field(description="The estimate of assets still pending or processing")
    budget: BudgetOut | None = Field(default=None, description="A campaign with a budget: what is left")
    performance: Performance
