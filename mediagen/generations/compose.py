"""`POST /api/v2/compose`: a composition request in the shape editors think in, turned into an
ordinary generation of `post/compose` (clips given) or `post/master` (music only).

The catalog entry's JSON Schema stays the one set of rules (the generic generate route takes the
same recipe under `parameters`); this model types the request for the API docs, and errors found
by the catalog are renamed from `parameters.clips[2].out` to the `clips[2].out` the caller sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediagen.campaigns.schemas import Ref
from mediagen.errors import MediagenError
from mediagen.generations.schemas import MAX_PROMPT, AssetId, GenerateRequest

COMPOSE_MODEL = "post/compose"
MASTER_MODEL = "post/master"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class ClipIn(_Strict):
    video_id: AssetId | None = Field(default=None, description="A stored video")
    image_id: AssetId | None = Field(default=None, description="A stored image, held for `duration`")
    in_: float | None = Field(default=None, alias="in", description="Video: in point (s)")
    out: float | None = Field(default=None, description="Video: out point (s); default its end")
    duration: float | None = Field(default=None, description="Image: seconds shown (default 3)")
    zoom: bool | None = Field(default=None, description="Image: slow push-in")


class TransitionIn(_Strict):
    type: Literal["cut", "crossfade"] = "cut"
    duration: float = Field(default=0.0, description="Crossfade length (s)")


class MusicIn(_Strict):
    audio_id: AssetId = Field(description="A stored audio asset")
    offset: float | None = Field(default=None, description="Where the music comes in on the timeline (s)")
    start: float | None = Field(default=None, description="How far into the music it starts (s)")
    loop: bool | None = Field(default=None, description="Repeat seamlessly to fill the length")
    fade_in: float | None = None
    fade_out: float | None = None
    mode: Literal["replace", "duck"] | None = Field(
        default=None, description="replace the clips' sound, or duck the music under it"
    )


class ComposeRequest(_Strict):
    """Clips in order with a music bed → a video spot; no clips and a music bed → an audio master."""

    clips: list[ClipIn] = Field(default_factory=list, max_length=50)
    transition: TransitionIn | None = None
    music: MusicIn | None = None
    aspect: Literal["16:9", "9:16", "1:1", "4:5"] | None = None
    fit: Literal["crop", "pad"] | None = None
    background: str | None = Field(default=None, max_length=16, description="Pad: blur or #rrggbb")
    length: float | None = Field(default=None, description="Target length (s): a cut-down")
    loudness: Literal["social", "broadcast_eu", "broadcast_us", "podcast"] | None = None
    output_format: Literal["mp3", "wav"] | None = Field(default=None, description="Audio master only")
    title: str = Field(default="Composition", min_length=1, max_length=MAX_PROMPT)
    client_id: Ref | None = None
    campaign_id: Ref | None = None
    brief_id: Ref | None = None
    collection: str | None = Field(default=None, min_length=1, max_length=128)

    def as_generation(self) -> tuple[str, GenerateRequest]:
        """(kind, the generic request) for this composition."""
        recipe = self.model_dump(
            by_alias=True,
            exclude_none=True,
            exclude={"title", "client_id", "campaign_id", "brief_id", "collection"},
        )
        kind, model = ("video", COMPOSE_MODEL) if self.clips else ("audio", MASTER_MODEL)
        if not self.clips:
            recipe.pop("clips", None)
        return kind, GenerateRequest(
            prompt=self.title,
            model=model,
            client_id=self.client_id,
            campaign_id=self.campaign_id,
            brief_id=self.brief_id,
            collection=self.collection,
            parameters=recipe,
        )


def as_sent(exc: MediagenError) -> MediagenError:
    """The same error, its field named as the compose request spells it."""
    if exc.field and exc.field.startswith("parameters."):
        exc.field = exc.field.removeprefix("parameters.")
    return exc


def recipe_of(parameters: dict[str, Any]) -> dict[str, Any]:
    """The recipe a stored composition was made with (its inputs minus the title)."""
    return {k: v for k, v in parameters.items() if k != "prompt"}
