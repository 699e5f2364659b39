"""Operator access to the blob store: upload, fetch and delete raw content by sha256 key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from mediagen.api.deps import AdminDep, SettingsDep, StoreDep
from mediagen.api.media import blob_response, put_request_body
from mediagen.config import Settings
from mediagen.errors import Conflict, not_found
from mediagen.storage.base import BlobInUseError, is_blob_key
from mediagen.vocabulary import Kind

router = APIRouter(prefix="/api/blobs", tags=["blobs"])


class BlobOut(BaseModel):
    key: str
    size: int


def upload_limit(settings: Settings) -> int:
    """The largest blob an operator may upload: the largest any stored asset may be."""
    return max(
        settings.max_upload_bytes,
        *(settings.max_download_bytes(kind) for kind in Kind),
    )


def _checked(key: str) -> str:
    if not is_blob_key(key):
        raise not_found("blob", key)
    return key


@router.put(
    "",
    status_code=201,
    response_model=BlobOut,
    responses={413: {"description": "Body larger than the upload limit"}},
)
async def put_blob(request: Request, _admin: AdminDep, store: StoreDep, settings: SettingsDep) -> BlobOut:
    """Store the raw request body; the key is its sha256 (uploading twice is harmless)."""
    info = await put_request_body(request, store, max_bytes=upload_limit(settings))
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
    responses={206: {"description": "Partial content"}, 416: {"description": "Range not satisfiable"}},
)
def get_blob(key: str, request: Request, _admin: AdminDep, store: StoreDep) -> Response:
    """The blob's bytes (Range, ETag, HEAD)."""
    return blob_response(request, store, _checked(key), content_type="application/octet-stream")


@router.delete("/{key}", status_code=204, responses={409: {"description": "The blob is still referenced"}})
def delete_blob(key: str, _admin: AdminDep, store: StoreDep) -> Response:
    """Delete an unreferenced blob now (409 while anything still references it)."""
    try:
        deleted = store.delete_now(_checked(key))
    except BlobInUseError as exc:
        raise Conflict(str(exc)) from exc
    if not deleted:
        raise not_found("blob", key)
    return Response(status_code=204)
