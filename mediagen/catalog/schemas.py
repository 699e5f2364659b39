"""The public shape of a catalog model, as the API lists it and the web form reads it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelOut(BaseModel):
    id: str
    owner: str
    name: str
    kind: str
    engine: str
    available: bool
    unavailable_reason: str | None
    default: bool
    title: str
    description: str
    label: str | None
    price: dict[str, Any]
    defaults: dict[str, Any]
    media_inputs: dict[str, str]
    request_map: dict[str, str]
    input_schema: dict[str, Any]
    local: dict[str, Any] | None = Field(
        default=None,
        description="Local models only: the Hugging Face repo, whether its weights are on this machine "
        "(path, source: models_dir or hf_cache, size_bytes), and the command that pulls them",
    )


class ModelList(BaseModel):
    models: list[ModelOut]
    count: int
    total: int
