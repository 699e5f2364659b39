"""The model catalog: what can be generated, with each model's input schema and defaults."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES
from mediagen.catalog.schemas import ModelList, ModelOut
from mediagen.vocabulary import Kind

router = APIRouter(prefix="/api/models", tags=["models"], responses=ERROR_RESPONSES)

NamePart = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("", response_model=ModelList)
def list_models(services: ServicesDep, _principal: PrincipalDep, kind: Kind | None = None) -> ModelList:
    """Every model (optionally one kind), available ones first."""
    rows = services.router.models(kind)
    return ModelList(models=rows, count=len(rows), total=len(rows))


@router.get("/{owner}/{name}", response_model=ModelOut)
def get_model(owner: NamePart, name: NamePart, services: ServicesDep, _principal: PrincipalDep) -> ModelOut:
    """One model with its full input schema."""
    return services.router.describe(f"{owner}/{name}")
