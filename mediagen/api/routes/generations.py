"""The generation API, one set of handlers for audio, images and videos.

Routes are spelled out per kind (so OpenAPI documents each with the seed's field names) but every
kind is served by the same functions below, parameterised by its KindInfo.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi import Path as FastAPIPath
from fastapi.responses import JSONResponse
from pydantic import create_model
from starlette.concurrency import run_in_threadpool

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.api.limits import FilingRef, GenId, IdFilter, Limit, Offset
from mediagen.api.media import blob_response
from mediagen.api.routes.plans import prompts_from_brief
from mediagen.auth.service import Principal
from mediagen.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from mediagen.generations.gallery import CURSOR_MAX, MAX_TAG
from mediagen.generations.presenters import accepted_json, asset_json
from mediagen.generations.schemas import GenerateAccepted, GenerateRequest, GenerationOut, RetryRequest
from mediagen.services import Services
from mediagen.vocabulary import KINDS, Kind, KindInfo, ReviewStatus, Status

router = APIRouter(responses=ERROR_RESPONSES)

RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorOut, "description": "Rate limit (per key, per minute); see Retry-After"},
}
PROVIDER: dict[int | str, dict[str, Any]] = {
    502: {"description": "The provider refused the job; the body names the failed generation"},
    503: {"description": "The provider account has no credit, or a dependency is unavailable"},
}
NOT_COMPLETED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Not completed yet, so there are no bytes"},
}
MEDIA: dict[int | str, dict[str, Any]] = {
    200: {"description": "The bytes", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
    206: {"description": "Partial content (Range)"},
    304: {"description": "Not modified (If-None-Match)"},
    416: {"description": "Range not satisfiable"},
}
# A list's `sort=` (generations.gallery.SORT_VALUES): a leading - is descending.
SortOrder = Literal["-created", "created", "-rating", "rating", "-duration", "duration"]
Collection = Annotated[
    str | None, Query(min_length=1, max_length=128, description="File it in this collection")
]


class FastJSONResponse(JSONResponse):
    """orjson instead of json: a gallery page is 50–100 items, and encoding them was a third of
    the request's own time (bench/gallery.py)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _asset(
    services: Services, row: Any, info: KindInfo, principal: Principal | None = None
) -> dict[str, Any]:
    lineage = services.generations.lineage(principal, row.id) if principal is not None else None
    return asset_json(row, info, services.generations.derivations(row.id), lineage)


Endpoint = Callable[..., Any]


def _route(
    info: KindInfo, method: str, path: str, name: str, doc: str, *, head: bool = False, **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """Register the decorated function as one endpoint of a kind, with its doc, tag and name;
    `head` adds HEAD beside GET for media routes (players probe with it), one OpenAPI entry."""

    def register(endpoint: Endpoint) -> Endpoint:
        endpoint.__doc__ = doc
        tags: list[str | Enum] = [info.label.lower()]
        router.add_api_route(path, endpoint, methods=[method], tags=tags, name=name, **options)
        if head:
            router.add_api_route(
                path, endpoint, methods=["HEAD"], include_in_schema=False, response_class=Response
            )
        return endpoint

    return register


def _register(info: KindInfo) -> None:
    kind, path = info.kind, info.path
    list_key = info.path

    @_route(
        info,
        "POST",
        f"/api/v2/generate/{kind}",
        f"generate_{kind}",
        f"Start generating {kind}; poll the Location or GET /api/{path}/{{id}}. With `n` > 1, "
        "n takes with distinct seeds in one take group (`ids`, `take_group`; GET /api/takes/{take_group}).",
        status_code=202,
        responses={
            202: {"model": GenerateAccepted, "description": "Accepted: poll `url` (or the Location)"},
            200: {"model": GenerateAccepted, "description": "Idempotent replay: the first request's answer"},
            409: {"model": ErrorOut, "description": "Idempotency-Key already used for another request"},
            **RATE_LIMITED,
            **PROVIDER,
        },
    )
    def generate(
        body: GenerateRequest,
        request: Request,
        response: Response,
        services: ServicesDep,
        principal: PrincipalDep,
        idempotency_key: Annotated[
            str | None, Header(max_length=200, description="Same key → same generation")
        ] = None,
    ) -> dict[str, Any]:
        if body.prompt is None:  # a brief's scenes give the prompts (the validator allows it)
            return prompts_from_brief(services, principal, kind, body, response, idempotency_key)
        takes = services.generations.create_takes(principal, kind, body, idempotency_key=idempotency_key)
        response.headers["Location"] = f"/api/{path}/{takes.first.id}"
        if not takes.created:
            response.status_code = 200
        return accepted_json(takes.first, info, takes.ids)

    page_fields: dict[str, Any] = {
        list_key: (list[GenerationOut], ...),
        "count": (int, ...),
        "total": (int, ...),
        "limit": (int, ...),
        "offset": (int, ...),
        "next_cursor": (str | None, ...),
    }
    page_model = create_model(f"{info.label.rstrip('s')}Page", **page_fields)

    @_route(
        info,
        "GET",
        f"/api/{path}",
        f"list_{path}",
        f"List {kind} with filters, a full-text search (`q`) and an order (`sort`): newest first "
        "by default, best match first for a search. Every filter narrows the list; a query "
        "parameter that is not one of these is a 422 naming it, never silently ignored. Page with "
        "`offset`, or with `cursor` set to the previous page's `next_cursor`.",
        response_class=JSONResponse,
        responses={200: {"model": page_model}},
    )
    def list_items(
        request: Request,
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Limit = 50,
        offset: Offset = 0,
        cursor: Annotated[
            str | None,
            Query(
                max_length=CURSOR_MAX,
                description="Start after this `next_cursor` of an earlier page (same `sort`; "
                "not with `offset`); a deep page then costs what the first does. Empty: the first page",
            ),
        ] = None,
        model_id: Annotated[str | None, Query(max_length=128)] = None,
        collection: Annotated[str | None, Query(max_length=128, description="Any case")] = None,
        client_id: IdFilter = None,
        campaign_id: IdFilter = None,
        brief_id: IdFilter = None,
        status: Status | None = None,
        review_status: ReviewStatus | None = None,
        favorite: Annotated[bool | None, Query(description="Starred (true) or not (false)")] = None,
        tag: Annotated[str | None, Query(min_length=1, max_length=MAX_TAG, description="Tagged so")] = None,
        rating_min: Annotated[int | None, Query(ge=1, le=5, description="Rated at least this")] = None,
        take_group: Annotated[
            str | None, Query(min_length=1, max_length=32, description="One request's takes")
        ] = None,
        q: Annotated[
            str | None,
            Query(
                max_length=200,
                description="Full-text search of prompt, title, notes and tags: every word must "
                "match (the last also as a prefix); ranked best match first unless `sort` is given "
                "(a ranked search pages by `offset`: its `next_cursor` is null)",
            ),
        ] = None,
        sort: Annotated[
            SortOrder | None,
            Query(description="created, rating or duration; a leading - for descending (nulls last)"),
        ] = None,
        loudness: Annotated[
            str | None,
            Query(
                pattern=r"^(social|broadcast_eu|broadcast_us|podcast):(meets|too_loud|too_quiet)$",
                description="Measured loudness against a preset, e.g. social:meets or broadcast_eu:too_loud",
            ),
        ] = None,
    ) -> JSONResponse:
        unknown = [name for name in request.query_params if name not in list_params]
        if unknown:
            raise InvalidInput(unknown[0], f"unknown filter; the list takes {', '.join(sorted(list_params))}")
        filters: dict[str, Any] = {
            "model_id": model_id,
            "collection": collection,
            "client_id": client_id,
            "campaign_id": campaign_id,
            "brief_id": brief_id,
            "status": status,
            "review_status": review_status,
            "favorite": favorite,
            "tag": tag,
            "rating_min": rating_min,
            "take_group": take_group,
            "loudness": tuple(loudness.split(":")) if loudness else None,
        }
        page = services.generations.page(
            principal, kind, filters, limit=limit, offset=offset, q=q, sort=sort, cursor=cursor or None
        )
        return FastJSONResponse(
            {
                list_key: [asset_json(r, info) for r in page.rows],
                "count": len(page.rows),
                "total": page.total,
                "limit": limit,
                "offset": offset,
                "next_cursor": page.next_cursor,
            }
        )

    # The query parameters the list takes: any other is refused.
    list_params = frozenset(inspect.signature(list_items).parameters) - {"request", "services", "principal"}

    one = f"/api/{path}/{{gen_id}}"

    @_route(
        info,
        "GET",
        one,
        f"get_{kind}",
        f"One {kind} item with its job state and metadata.",
        response_class=JSONResponse,
        responses={200: {"model": GenerationOut}},
    )
    def get_item(gen_id: GenId, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
        row = services.generations.get(principal, kind, gen_id)
        return FastJSONResponse(_asset(services, row, info, principal))

    @_route(
        info,
        "DELETE",
        one,
        f"delete_{kind}",
        f"Delete a {kind} item; its bytes go once nothing else references them.",
        status_code=204,
    )
    def delete_item(gen_id: GenId, services: ServicesDep, principal: PrincipalDep) -> Response:
        services.generations.delete(principal, kind, gen_id)
        return Response(status_code=204)

    @_route(
        info,
        "GET",
        f"{one}/data",
        f"data_{kind}",
        f"The {kind} bytes (Range, ETag; ?download=true for an attachment named "
        "`<campaign>-<prompt slug>-<id>.<ext>`, as in a zip from /api/downloads).",
        head=True,
        response_class=Response,
        responses={**MEDIA, **NOT_COMPLETED},
    )
    def data(
        gen_id: GenId,
        request: Request,
        services: ServicesDep,
        principal: PrincipalDep,
        download: bool = False,
    ) -> Response:
        row = services.generations.get(principal, kind, gen_id)
        if row.status != Status.COMPLETED or not row.blob_key:
            raise Conflict(f"{kind} {gen_id} is {row.status}; bytes exist once it is completed")
        return blob_response(
            request,
            services.store,
            row.blob_key,
            content_type=row.content_type or "application/octet-stream",
            filename=services.downloads.filename(row) if download else None,
        )

    for deriv in (*info.derivations, *(("spectrogram",) if kind == Kind.AUDIO else ())):
        _register_derivation(info, deriv)

    @_route(
        info,
        "POST",
        f"/api/{path}/upload",
        f"upload_{kind}",
        f"Add a {kind} file of your own (raw bytes as the body) as a completed asset, usable "
        f"as an input wherever a {kind} id is accepted.",
        status_code=201,
        response_class=JSONResponse,
        responses={201: {"model": GenerationOut}, 413: {"model": ErrorOut, "description": "File too large"}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def upload(
        request: Request,
        services: ServicesDep,
        principal: PrincipalDep,
        title: Annotated[str, Query(min_length=1, max_length=200, description="Name shown in the gallery")],
        client_id: FilingRef = None,
        campaign_id: FilingRef = None,
        brief_id: FilingRef = None,
        collection: Collection = None,
    ) -> JSONResponse:
        settings = services.settings
        workroot = settings.data_dir / "work"
        workroot.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=workroot) as tmp:
            file = Path(tmp) / "upload"
            size = 0
            with file.open("wb") as fh:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        raise PayloadTooLarge(f"file: larger than {settings.max_upload_bytes // 2**20} MB")
                    await run_in_threadpool(fh.write, chunk)
            if size == 0:
                raise InvalidInput("file", "the request body is empty; send the file's bytes")

            def store() -> dict[str, Any]:
                row = services.generations.create_upload(
                    principal,
                    kind,
                    file,
                    title=title,
                    client_id=client_id,
                    campaign_id=campaign_id,
                    brief_id=brief_id,
                    collection=collection,
                )
                return _asset(services, row, info)

            body = await run_in_threadpool(store)
        return JSONResponse(
            body,
            status_code=201,
            headers={"Location": f"/api/{path}/{body['id']}"},
        )

    @_route(
        info,
        "POST",
        f"{one}/cancel",
        f"cancel_{kind}",
        f"Cancel a pending or running {kind} job (also at the provider).",
        responses={
            200: {"model": GenerationOut, "description": "Canceled"},
            409: {"model": ErrorOut, "description": "Already finished"},
        },
    )
    def cancel(gen_id: GenId, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
        return asset_json(services.generations.cancel(principal, kind, gen_id).row, info, [])

    @_route(
        info,
        "POST",
        f"{one}/retry",
        f"retry_{kind}",
        f"Regenerate: a new take (a new {kind} item) with the same model, inputs and filing and a "
        "NEW seed, in the original's take group (made if it had none, and set on the original). "
        "`same_seed` (query or body) reuses the stored seed instead.",
        status_code=202,
        responses={
            202: {"model": GenerateAccepted, "description": "Accepted: poll `url` (or the Location)"},
            **RATE_LIMITED,
            **PROVIDER,
        },
    )
    def retry(
        gen_id: GenId,
        response: Response,
        services: ServicesDep,
        principal: PrincipalDep,
        same_seed: Annotated[bool, Query(description="Reuse the stored seed (the same result)")] = False,
        body: Annotated[RetryRequest | None, Body()] = None,
    ) -> dict[str, Any]:
        row = services.generations.retry(
            principal, kind, gen_id, same_seed=same_seed or (body is not None and body.same_seed)
        )
        response.headers["Location"] = f"/api/{path}/{row.id}"
        return accepted_json(row, info)


DERIVATION_DOCS = {
    "waveform": "Waveform peaks (audiowaveform v2 JSON, 8-bit, levels comparable across clips).",
    "thumbnail": "A WebP thumbnail, longest side ≤ 400 px.",
    "poster": "A full-size WebP frame from early in the clip.",
    "spectrogram": "The spectrogram image some models (riffusion) return beside the audio.",
}


def _register_derivation(info: KindInfo, name: str) -> None:
    @_route(
        info,
        "GET",
        f"/api/{info.path}/{{gen_id}}/{name}",
        f"{name}_{info.kind}",
        DERIVATION_DOCS.get(name, name),
        head=True,
        response_class=Response,
        responses=MEDIA,
    )
    def derivation(
        gen_id: GenId, request: Request, services: ServicesDep, principal: PrincipalDep
    ) -> Response:
        return _derivation_response(request, services, principal, info, gen_id, name)


def _derivation_response(
    request: Request, services: Services, principal: Principal, info: KindInfo, gen_id: int, name: str
) -> Response:
    row = services.generations.get(principal, info.kind, gen_id)
    d = services.generations.derivations(row.id).get(name)
    if d is None:
        raise NotFound(
            f"{info.kind} {gen_id} has no {name}"
            + ("" if row.status == Status.COMPLETED else f" yet (status {row.status})"),
        )
    return blob_response(request, services.store, d.blob_key, content_type=d.content_type)


def _register_files(info: KindInfo) -> None:
    @_route(
        info,
        "GET",
        f"/api/{info.path}/{{gen_id}}/files/{{name}}",
        f"file_{info.kind}",
        "Any file kept with the asset, by name: the ones above, and a model's further outputs "
        "(e.g. `output_1`, `output_2` of a model asked for several images). The item's `files` "
        "lists them.",
        head=True,
        response_class=Response,
        responses=MEDIA,
    )
    def file(
        gen_id: GenId, name: FileName, request: Request, services: ServicesDep, principal: PrincipalDep
    ) -> Response:
        return _derivation_response(request, services, principal, info, gen_id, name)


# A derivation's name as stored (a model output's role): letters, digits, `_` and `-`.
FileName = Annotated[str, FastAPIPath(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

for _info in KINDS.values():
    _register(_info)
    _register_files(_info)

__all__ = ["router"]
