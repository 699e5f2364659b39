"""Post-production: `POST /api/v2/compose` makes a spot (video) or a master (audio) from stored
assets, as a generation like any other (queued, filed, idempotent, rate limited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.errors import InvalidInput, NotFound
from mediagen.generations.compose import ComposeRequest, as_sent
from mediagen.generations.presenters import accepted_json
from mediagen.generations.schemas import GenerateAccepted
from mediagen.vocabulary import KINDS, Kind

router = APIRouter(responses=ERROR_RESPONSES, tags=["post-production"])


@router.post(
    "/api/v2/compose",
    status_code=202,
    response_model=GenerateAccepted,
    responses={
        200: {"model": GenerateAccepted, "description": "Replay of an Idempotency-Key"},
        404: {"description": "A referenced asset does not exist or is not yours; the body names the field"},
        409: {"model": ErrorOut, "description": "The Idempotency-Key was used for a different request"},
        429: {"model": ErrorOut, "description": "Rate limit (per key, per minute); see Retry-After"},
        503: {"model": ErrorOut, "description": "The job queue cannot take new jobs right now"},
    },
)
def compose(
    body: ComposeRequest,
    response: Response,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None, Header(max_length=200, description="Same key → same asset")
    ] = None,
) -> dict[str, Any]:
    """Clips (stored videos with in/out points, stored images held for a duration) cut or
    crossfaded together, a stored music bed (offset, loop or trim, fades, replace or duck), framed
    for an aspect (crop or pad), cut down to a length and mastered to a loudness preset: a new
    video (`video_id`). With no clips, the music alone is mastered: a new audio (`audio_id`)."""
    kind, request = body.as_generation()
    try:
        row, created = services.generations.create(principal, kind, request, idempotency_key=idempotency_key)
    except (InvalidInput, NotFound) as exc:
        raise as_sent(exc) from exc
    info = KINDS[Kind(kind)]
    response.headers["Location"] = f"/api/{info.path}/{row.id}"
    if not created:
        response.status_code = 200
    return accepted_json(row, info)
