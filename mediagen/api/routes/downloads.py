"""Bulk downloads: finished assets of any kind as one zip, streamed as it is written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.generations.downloads import MAX_ITEMS, DownloadRequest, parse_items

router = APIRouter(prefix="/api/downloads", tags=["downloads"], responses=ERROR_RESPONSES)

ZIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The zip (stored, not deflated), streamed; "
        "files named `<campaign>-<prompt slug>-<id>.<ext>`",
    },
    404: {
        "model": ErrorOut,
        "description": "An item does not exist or is not yours (`errors` names `items[i]`)",
    },
    409: {"model": ErrorOut, "description": "An item is not completed yet (`errors` names `items[i]`)"},
}


def _zip(name: str, chunks: Iterator[bytes]) -> StreamingResponse:
    # The name is an ASCII slug, so the quoted form and the RFC 8187 one are the same text.
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"},
    )


@router.post("", response_class=StreamingResponse, responses=ZIP_RESPONSES)
def download_zip(body: DownloadRequest, services: ServicesDep, principal: PrincipalDep) -> StreamingResponse:
    """Up to 1000 completed assets as one zip, in the order listed (an item listed twice goes in
    once). Every item is checked before the first byte: one that is not yours is a 404 and one
    not completed a 409, each naming `items[i]`. Memory stays flat whatever the size."""
    return _zip(*services.downloads.zip_stream(principal, body.items))


@router.get("", response_class=StreamingResponse, responses=ZIP_RESPONSES)
def download_zip_link(
    services: ServicesDep,
    principal: PrincipalDep,
    items: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_ITEMS * 28,
            description=f"`kind:id` pairs separated by commas, e.g. `audio:51,image:3` (at most {MAX_ITEMS})",
        ),
    ],
) -> StreamingResponse:
    """The same zip as POST, for a plain link."""
    return _zip(*services.downloads.zip_stream(principal, parse_items(items).items))
