"""Channel exports: one asset rendered per channel (frame, length cap, loudness), listed together
and downloadable as one streamed zip."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.api.limits import GenId
from mediagen.generations.exports import CHANNELS, ExportRequest

router = APIRouter(responses=ERROR_RESPONSES, tags=["post-production"])
PRESET_LIST = ", ".join(
    f"{c.name} ({c.aspect or 'audio'}, {c.loudness}{f', ≤ {c.max_length:g} s' if c.max_length else ''})"
    for c in CHANNELS.values()
)


@router.post(
    "/api/v2/export",
    status_code=202,
    responses={
        404: {"model": ErrorOut, "description": "The source does not exist or is not yours"},
        429: {"model": ErrorOut, "description": "Rate limit (each rendition counts as a generation)"},
        503: {"model": ErrorOut, "description": "The job queue cannot take new jobs right now"},
    },
)
def create_export(body: ExportRequest, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """One rendition per channel of a finished video or audio, each a composition of its own
    (queued like any generation). Channels are presets or your own `{name, aspect, loudness,
    max_length}`. Presets:"""
    export, items = services.exports.create(principal, body)
    return {
        "export_id": export.id,
        "ids": [i.generation_id for i in items],
        "url": f"/api/exports/{export.id}",
    }


create_export.__doc__ = (create_export.__doc__ or "") + PRESET_LIST + "."


@router.get("/api/exports/{export_id}")
def get_export(export_id: GenId, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """The export's renditions with their status, and where to download each and the zip."""
    export, renditions = services.exports.get(principal, export_id)
    return services.exports.json(export, renditions)


@router.get(
    "/api/exports/{export_id}/zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The completed renditions"}},
)
def export_zip(export_id: GenId, services: ServicesDep, principal: PrincipalDep) -> StreamingResponse:
    """Every completed rendition in one zip, named `<campaign>-<channel>-<id>.<ext>`, streamed as
    it is written (memory stays flat whatever the size)."""
    name, chunks = services.exports.zip_stream(principal, export_id)
    return StreamingResponse(
        (c for c in chunks if c),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
