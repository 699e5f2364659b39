"""Request and response shapes of the generation API (seed-compatible, one set for all kinds)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from mediagen.campaigns.schemas import MAX_INT64, MIN_INT64, Ref, bounded_json
from mediagen.vocabulary import MAX_ID, Kind, ReviewStatus, Status

MAX_PROMPT = 2000
MAX_URL = 64 * 1024  # an http(s) URL, or a small data: URL (larger files: POST /api/{kind}/upload)
MAX_PARAMETERS_BYTES = 64 * 1024
MAX_WORD = 64  # formats, modes, ratios, versions

Int64 = Annotated[int, Field(ge=MIN_INT64, le=MAX_INT64)]
AssetId = Annotated[int, Field(ge=1, le=MAX_ID)]
Word = Annotated[str, Field(max_length=MAX_WORD)]
Url = Annotated[str, Field(max_length=MAX_URL)]
Parameters = Annotated[dict[str, Any], AfterValidator(bounded_json(MAX_PARAMETERS_BYTES))]

# The request fields that are not model inputs: they file the asset or pick the model.
FILING_FIELDS = ("model", "client_id", "campaign_id", "brief_id", "collection", "parameters")
# Fields that steer how the request is made, not what the model is given.
CONTROL_FIELDS = ("n", "brand", "override_budget")
# The most takes (`n`) a request can ever ask for; `Settings.max_takes` may lower it.
MAX_TAKES = 8


class GenerateRequest(BaseModel):
    """Named fields from the seed's API plus `parameters` for any other model input.

    Every named field is optional except the prompt (which only a request with a `brief_id` may
    leave out: the brief's plan gives the prompts); a field the chosen model does not take is
    refused with a 422 naming it, rather than silently dropped.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PROMPT,
        description="Required, except with a brief_id (an image request then takes the prompts of the "
        "brief's scenes)",
    )
    model: str | None = Field(default=None, max_length=128, description="Model id; default per kind")
    duration: float | None = Field(default=None, gt=0, description="Seconds")
    seed: Int64 | None = Field(
        default=None,
        description="Reproduce a result: take i gets seed + i. Without it each take gets a fresh random seed",
    )
    n: int = Field(
        default=1,
        ge=1,
        le=MAX_TAKES,
        description=f"How many takes (1–{MAX_TAKES}, at most the server's max_takes): one asset each, "
        "with distinct seeds, in one take group; counted as one request by the rate limit",
    )
    client_id: Ref | None = None
    campaign_id: Ref | None = None
    brief_id: Ref | None = None
    collection: str | None = Field(default=None, min_length=1, max_length=128)
    parameters: Parameters = Field(
        default_factory=dict,
        description=f"Any model input by name: at most {MAX_PARAMETERS_BYTES // 1024} KiB of JSON",
    )
    brand: bool = Field(
        default=True,
        description="Apply the client's brand to the prompt (style, palette, music, words to avoid); "
        "false sends the prompt as typed",
    )
    override_budget: bool = Field(
        default=False,
        description="Admins only: make it even if it takes the campaign over its budget "
        "(anyone else gets a 403)",
    )
    # audio (MusicGen & co.)
    temperature: float | None = None
    top_k: Int64 | None = None
    top_p: float | None = None
    classifier_free_guidance: float | None = None
    output_format: Word | None = None
    model_version: Word | None = None
    normalization_strategy: Word | None = None
    input_audio: Url | None = Field(default=None, description="URL of a melody/continuation source")
    audio_id: AssetId | None = Field(default=None, description="A completed generated audio to condition on")
    continuation: bool | None = None
    # video
    image: Url | None = Field(
        default=None,
        description=f"Start image: http(s) URL, or a data: URL up to {MAX_URL // 1024} KiB "
        "(upload a larger file and pass image_id)",
    )
    image_id: AssetId | None = Field(default=None, description="Start image: a completed generated image")
    resolution: Word | None = None
    aspect_ratio: Word | None = None
    fps: Int64 | None = None
    camera_fixed: bool | None = None
    mode: Word | None = None
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT)
    # image
    width: Int64 | None = None
    height: Int64 | None = None
    num_outputs: Int64 | None = None

    @model_validator(mode="after")
    def _prompt_or_brief(self) -> GenerateRequest:
        if self.prompt is None and self.brief_id is None:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "missing", "field required (it may be left out only with a brief_id)"
                        ),
                        loc=("prompt",),
                        input=None,
                    )
                ],
            )
        return self

    def named_inputs(self) -> dict[str, Any]:
        """The fields that map onto model inputs (everything but filing and control fields)."""
        data = self.model_dump(exclude_unset=True, exclude_none=True)
        return {k: v for k, v in data.items() if k not in FILING_FIELDS and k not in CONTROL_FIELDS}


class RetryRequest(BaseModel):
    """Regenerate: a new take in the asset's take group, with a new seed unless asked otherwise."""

    model_config = ConfigDict(extra="forbid")

    same_seed: bool = Field(default=False, description="Reuse the asset's stored seed (the same result)")


class GenerateAccepted(BaseModel):
    """The 202 body: the seed's `<kind>_id` (e.g. `audio_id`) beside `id`, and where to poll;
    `id` is the first take, `ids` every take of the request."""

    model_config = ConfigDict(extra="allow")

    id: int
    ids: list[int] = Field(description="Every take this request made, first to last ([id] for n = 1)")
    take_group: str | None = Field(
        description="The takes' group (`tg_…`, GET /api/takes/{take_group}); null for a single take"
    )
    status: Status
    model: str = Field(description="The model that will make it (an offline draft's synth model)")
    engine: str
    kind: Kind
    url: str = Field(description="Poll this for the job's state")
    requested_model: str | None = Field(default=None, description="Set when an offline draft was made")
    notice: str | None = None
    ignored_inputs: list[str] | None = None
    engine_label: str | None = None


class LoudnessOut(BaseModel):
    integrated_lufs: float | None = Field(description="Integrated loudness (LUFS); null for silence")
    true_peak_dbtp: float | None = Field(description="True peak (dBTP, 4× oversampled)")
    lra: float | None = Field(description="Loudness range (LU, EBU Tech 3342)")


class AssetRef(BaseModel):
    kind: Kind
    id: int


class SourceRef(AssetRef):
    field: str = Field(description="Where the input named it, e.g. clips[2].video_id")
    exists: bool = Field(description="false once the source was deleted (the asset keeps its own bytes)")


class GenerationOut(BaseModel):
    """One asset with its job state; `<kind>_url` serves the bytes."""

    model_config = ConfigDict(extra="allow")

    id: int
    kind: Kind
    prompt: str
    model_id: str
    engine: str
    parameters: dict[str, Any]
    status: Status
    error: str | None
    progress: float | None = Field(
        default=None, description="0–1 while a local model runs (1 once completed); null when unknown"
    )
    progress_note: str | None = Field(
        default=None, description="What a running job is doing, e.g. 'loading model'"
    )
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    collection: str | None
    metadata: dict[str, Any]
    download_attempted: bool
    download_retries: int
    download_error: str | None
    client_id: str | None
    campaign_id: str | None
    brief_id: str | None
    duration: float | None
    width: int | None
    height: int | None
    content_type: str | None
    size_bytes: int | None
    cost_usd: float = Field(description="The catalog's estimate, made when it was asked for")
    actual_cost_usd: float | None = Field(
        default=None,
        description="What it really cost: hosted, the provider's compute seconds × its hardware's price "
        "(official models: their price per output); local and synth engines 0; null until known",
    )
    compute_seconds: float | None = Field(
        default=None, description="The provider's predict_time, or this machine's run time"
    )
    prompt_sent: str | None = Field(
        default=None,
        description="The prompt the model was given (the client's brand applied); null for uploads",
    )
    brand_applied: list[str] = Field(
        default_factory=list, description="What the client's brand added or left out, in words"
    )
    views: int | None = Field(default=None, description="Campaign performance, as reported by the team")
    clicks: int | None = None
    conversions: int | None = None
    ctr: float | None = Field(default=None, description="clicks / views (null without views)")
    data_url: str | None
    waveform_url: str | None = None
    thumbnail_url: str | None = None
    poster_url: str | None = None
    files: dict[str, str] = Field(default_factory=dict, description="Every file kept with it, by name")
    derivations: list[str] = Field(default_factory=list)
    loudness: LoudnessOut | None = Field(
        default=None, description="Audio and video with sound: measured at ingest (ITU-R BS.1770 / EBU R 128)"
    )
    seed: int | None = Field(
        default=None, description="The seed the model was given; send it back as `seed` to reproduce"
    )
    take_group: str | None = Field(default=None, description="The request's group of takes (`n` > 1)")
    title: str | None = None
    notes: str | None = None
    tags: list[str] = Field(default_factory=list)
    favorite: bool = False
    rating: int | None = Field(default=None, description="1–5, set by the team")
    review_status: ReviewStatus = Field(
        default=ReviewStatus.DRAFT, description="draft → in_review → approved | rejected"
    )
    made_from: list[SourceRef] | None = Field(
        default=None,
        description="Single item only: the stored assets its inputs named (a composition's clips)",
    )
    used_in: list[AssetRef] | None = Field(
        default=None, description="Single item only: assets made from this one"
    )
