"""The model catalog: what can be generated, with each model's input schema and defaults."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES
from mediagen.errors import not_found

router = APIRouter(prefix="/api/models", tags=["models"], responses=ERROR_RESPONSES)


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


class ModelList(BaseModel):
    models: list[ModelOut]
    count: int
    total: int


def _out(services: ServicesDep, model_id: str) -> ModelOut:
    entry = services.catalog.get(model_id)
    assert entry is not None
    routing = services.generations.route(model_id)
    default = services.generations.default_model(entry.kind) == model_id
    return ModelOut(
        **entry.public(engine=routing.engine),
        available=routing.engine is not None,
        unavailable_reason=routing.reason,
        default=default,
    )


@router.get("", response_model=ModelList)
def list_models(
    services: ServicesDep, _principal: PrincipalDep, kind: Literal["audio", "image", "video"] | None = None
) -> ModelList:
    """Every model (optionally one kind), available ones first."""
    rows = [_out(services, e.id) for e in services.catalog.list(kind)]
    rows.sort(key=lambda m: (not m.available, not m.default, m.kind, m.id))
    return ModelList(models=rows, count=len(rows), total=len(rows))


@router.get("/{owner}/{name}", response_model=ModelOut)
def get_model(owner: str, name: str, services: ServicesDep, _principal: PrincipalDep) -> ModelOut:
    """One model with its full input schema."""
    model_id = f"{owner}/{name}"
    if services.catalog.get(model_id) is None:
        raise not_found("model", model_id)
    return _out(services, model_id)
