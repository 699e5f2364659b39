"""Operator access to the blob store: upload, fetch and delete raw content by sha256 key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from mediagen.api.deps import AdminDep, SettingsDep, StoreDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.api.limits import blob_upload_limit
from mediagen.api.media import blob_response
from mediagen.api.uploads import put_request_body
from mediagen.errors import Conflict, not_found
from mediagen.storage.base import BlobInUseError, is_blob_key

ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    403: {"model": ErrorOut, "description": "Not an admin key for all clients"},
}
router = APIRouter(prefix="/api/blobs", tags=["blobs"], responses=ADMIN_ONLY)


class BlobOut(BaseModel):
    key: str
    size: int


def _checked(key: str) -> str:
    if not is_blob_key(key):
        raise not_found("blob", key)
    return key


@router.put(
    "",
    status_code=201,
    response_model=BlobOut,
    responses={413: {"model": ErrorOut, "description": "Body larger than the upload limit"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_blob(request: Request, _admin: AdminDep, store: StoreDep, settings: SettingsDep) -> BlobOut:
    """Store the raw request body; the key is its sha256 (uploading twice is harmless)."""
    info = await put_request_body(request, store, max_bytes=blob_upload_limit(settings))
    return BlobOut(key=info.key, size=info.size)


@router.api_route(
    "/{key}",
    methods=["HEAD"],
    response_class=Response,
    include_in_schema=False,
)
@router.api_route(
    "/{key}",
    methods=["GET"],
    response_class=Response,
    responses={
        200: {
            "description": "The bytes",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        206: {"description": "Partial content (Range)"},
        304: {"description": "Not modified (If-None-Match)"},
        416: {"description": "Range not satisfiable"},
    },
)
def get_blob(key: str, request: Request, _admin: AdminDep, store: StoreDep) -> Response:
    """The blob's bytes (Range, ETag, HEAD)."""
    return blob_response(request, store, _checked(key), content_type="application/octet-stream")


@router.delete(
    "/{key}",
    status_code=204,
    responses={409: {"model": ErrorOut, "description": "The blob is still referenced"}},
)
def delete_blob(key: str, _admin: AdminDep, store: StoreDep) -> Response:
    """Delete an unreferenced blob now (409 while anything still references it)."""
    try:
        deleted = store.delete_now(_checked(key))
    except BlobInUseError as exc:
        raise Conflict(str(exc)) from exc
    if not deleted:
        raise not_found("blob", key)
    return Response(status_code=204)
