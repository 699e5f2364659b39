"""The model browser's API shapes: Replicate search results, a model's preview, an add request."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediagen.vocabulary import Kind

MODEL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}/[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
VERSION_ID = r"^[0-9a-f]{64}$"

Candidacy = Literal["audio", "image", "video", "unsupported"]


class CandidateOut(BaseModel):
    id: str = Field(description="owner/name")
    owner: str
    name: str
    description: str | None = None
    url: str | None = Field(default=None, description="The model's page on replicate.com")
    run_count: int | None = None
    cover_image_url: str | None = None
    official: bool = False
    kind: Candidacy = Field(
        description='What it makes, as inferred from its output; "unsupported" if it cannot be added'
    )
    why: str | None = Field(default=None, description="Why it cannot be added (kind unsupported)")
    in_catalog: Literal["built-in", "added"] | None = Field(
        default=None, description="Already in this server's catalog: packaged, or added from Replicate"
    )
    collections: list[str] = Field(default_factory=list, description="Replicate collections it was found in")


class CollectionOut(BaseModel):
    slug: str
    name: str
    description: str | None = None


class SearchOut(BaseModel):
    query: str
    models: list[CandidateOut]
    collections: list[CollectionOut]
    count: int


class ExampleFile(BaseModel):
    url: str
    kind: str | None = Field(default=None, description="audio, image or video, from its extension")


class PreviewOut(CandidateOut):
    version: str | None = Field(
        default=None, description="The version the entry would pin (None: the official endpoint)"
    )
    input_schema: dict[str, Any] = Field(
        default_factory=dict, description="Its inputs as the catalog would hold them"
    )
    defaults: dict[str, Any] = Field(default_factory=dict)
    request_map: dict[str, str] = Field(default_factory=dict)
    media_inputs: dict[str, str] = Field(default_factory=dict)
    example_input: dict[str, Any] | None = None
    example_files: list[ExampleFile] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="What adding it leaves out (secret inputs)")


class AddModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    model: str = Field(pattern=MODEL_ID, max_length=127, description="The Replicate model, owner/name")
    version: str | None = Field(
        default=None,
        pattern=VERSION_ID,
        description="A version id (64 hex) to pin; default its latest version "
        "(an official model: its endpoint)",
    )
    kind: Kind | None = Field(
        default=None,
        description="Only for a model that makes files whose kind its example output does not tell",
    )
