"""Request and response shapes of the generation API (seed-compatible, one set for all kinds)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mediagen.vocabulary import Kind, Status

MAX_PROMPT = 2000

# The request fields that are not model inputs: they file the asset or pick the model.
FILING_FIELDS = ("model", "client_id", "campaign_id", "brief_id", "collection", "parameters")


class GenerateRequest(BaseModel):
    """Named fields from the seed's API plus `parameters` for any other model input.

    Every named field is optional except the prompt; a field the chosen model does not take is
    refused with a 422 naming it, rather than silently dropped.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    model: str | None = Field(default=None, max_length=128, description="Model id; default per kind")
    duration: float | None = Field(default=None, gt=0, description="Seconds")
    seed: int | None = None
    client_id: str | None = Field(default=None, max_length=64)
    campaign_id: str | None = Field(default=None, max_length=64)
    brief_id: str | None = Field(default=None, max_length=64)
    collection: str | None = Field(default=None, max_length=128)
    parameters: dict[str, Any] = Field(default_factory=dict, description="Any model input by name")
    # audio (MusicGen & co.)
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    classifier_free_guidance: float | None = None
    output_format: str | None = None
    model_version: str | None = None
    normalization_strategy: str | None = None
    input_audio: str | None = Field(default=None, description="URL of a melody/continuation source")
    audio_id: int | None = Field(default=None, description="A completed generated audio to condition on")
    continuation: bool | None = None
    # video
    image: str | None = Field(default=None, description="Start image: http(s) or data: URL")
    image_id: int | None = Field(default=None, description="Start image: a completed generated image")
    resolution: str | None = None
    aspect_ratio: str | None = None
    fps: int | None = None
    camera_fixed: bool | None = None
    mode: str | None = None
    negative_prompt: str | None = None
    # image
    width: int | None = None
    height: int | None = None
    num_outputs: int | None = None

    def named_inputs(self) -> dict[str, Any]:
        """The fields that map onto model inputs (everything but filing fields)."""
        data = self.model_dump(exclude_unset=True, exclude_none=True)
        return {k: v for k, v in data.items() if k not in FILING_FIELDS}


class GenerateAccepted(BaseModel):
    """The 202 body: the seed's `<kind>_id` (e.g. `audio_id`) beside `id`, and where to poll."""

    model_config = ConfigDict(extra="allow")

    id: int
    status: Status
    model: str = Field(description="The model that will make it (an offline draft's synth model)")
    engine: str
    kind: Kind
    url: str = Field(description="Poll this for the job's state")
    requested_model: str | None = Field(default=None, description="Set when an offline draft was made")
    notice: str | None = None
    ignored_inputs: list[str] | None = None
    engine_label: str | None = None


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
    cost_usd: float
    data_url: str | None
    waveform_url: str | None = None
    thumbnail_url: str | None = None
    poster_url: str | None = None
    derivations: list[str] = Field(default_factory=list)
