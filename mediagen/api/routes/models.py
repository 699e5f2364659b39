"""The model catalog: what can be generated, with each model's input schema and defaults; and
the model browser: Replicate's search, a model's preview, adding one to the catalog, removing it.

The browser's routes sit under `/api/models/replicate/…` and are registered before
`/api/models/{owner}/{name}`, so `replicate/search` is never read as a model id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from mediagen.api.deps import AdminDep, PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.catalog.browse_schemas import AddModelIn, PreviewOut, SearchOut
from mediagen.catalog.schemas import ModelList, ModelOut
from mediagen.vocabulary import Kind

router = APIRouter(prefix="/api/models", tags=["models"], responses=ERROR_RESPONSES)

NamePart = Annotated[str, Path(min_length=1, max_length=100)]
REPLICATE_DOWN: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorOut,
        "description": "No REPLICATE_API_TOKEN here, or Replicate is unreachable or refused the token",
    }
}
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "Only an admin whose key reaches every client may do this"},
}


@router.get("", response_model=ModelList)
def list_models(services: ServicesDep, _principal: PrincipalDep, kind: Kind | None = None) -> ModelList:
    """Every model (optionally one kind), available ones first; models added from Replicate
    included (their label says so)."""
    rows = services.router.models(kind)
    return ModelList(models=rows, count=len(rows), total=len(rows))


@router.get("/replicate/search", response_model=SearchOut, responses=REPLICATE_DOWN)
def search_replicate(
    services: ServicesDep,
    _principal: PrincipalDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="What to search Replicate for")],
    limit: Annotated[int, Query(ge=1, le=50, description="At most this many models")] = 20,
) -> SearchOut:
    """Replicate's search and the models of the collections that match: each model with what it
    would make here (audio, image, video) or "unsupported" and why, and whether the catalog
    holds it already."""
    return services.model_browser.search(q, limit=limit)


@router.get("/replicate/{owner}/{name}", response_model=PreviewOut, responses=REPLICATE_DOWN)
def preview_replicate_model(
    owner: NamePart,
    name: NamePart,
    services: ServicesDep,
    _principal: PrincipalDep,
    version: Annotated[
        str | None, Query(pattern=r"^[0-9a-f]{64}$", description="A version id; default the latest")
    ] = None,
) -> PreviewOut:
    """A Replicate model as it would be added: what it makes, its inputs (the schema the catalog
    would hold), how our request fields map onto them, and its example input and output files."""
    return services.model_browser.preview(f"{owner}/{name}", version)


@router.post(
    "/replicate",
    status_code=201,
    response_model=ModelOut,
    responses={
        **ADMIN_ONLY,
        **REPLICATE_DOWN,
        409: {"model": ErrorOut, "description": "The model is in the catalog already (built in or added)"},
    },
)
def add_replicate_model(body: AddModelIn, services: ServicesDep, admin: AdminDep) -> ModelOut:
    """Add a Replicate model to the catalog by `owner/name` (optionally a version to pin): its
    schema is read from Replicate and its kind inferred from its output (a model that makes text
    or anything but audio, an image or a video is refused with a 422 saying why). It is then
    listed and generated with like a built-in model, in every process of the server."""
    entry = services.model_browser.add(admin, body.model, body.version, body.kind)
    return services.router.describe(entry.id)


@router.get("/{owner}/{name}", response_model=ModelOut)
def get_model(owner: NamePart, name: NamePart, services: ServicesDep, _principal: PrincipalDep) -> ModelOut:
    """One model with its full input schema."""
    return services.router.describe(f"{owner}/{name}")


@router.delete(
    "/{owner}/{name}",
    status_code=204,
    responses={
        **ADMIN_ONLY,
        409: {"model": ErrorOut, "description": "A built-in model: only added ones can be removed"},
    },
)
def remove_model(owner: NamePart, name: NamePart, services: ServicesDep, admin: AdminDep) -> Response:
    """Remove a model added from Replicate (assets made with it stay; new requests for it are
    refused as for any unknown model)."""
    services.model_browser.remove(admin, f"{owner}/{name}")
    return Response(status_code=204)
