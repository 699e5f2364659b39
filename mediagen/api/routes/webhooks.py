"""Provider callbacks. Not behind X-API-Key: signed ones (Replicate) are verified by their
Standard Webhooks signature, token ones (Cog, which cannot sign) by an unguessable
per-generation token in the URL. The use case is `generations.webhooks.WebhookIntake`."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from mediagen.api.deps import ServicesDep
from mediagen.api.errors import ErrorOut
from mediagen.errors import PayloadTooLarge

router = APIRouter(
    prefix="/api/webhooks",
    tags=["webhooks"],
    responses={401: {"model": ErrorOut, "description": "Bad or missing signature/token"}},
)

MAX_WEBHOOK_BYTES = 16 * 1024 * 1024


async def _raw_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge("webhook body too large")
    return bytes(body)


@router.post("/replicate")
async def replicate_webhook(request: Request, services: ServicesDep) -> dict[str, str]:
    """Prediction events from Replicate (start, completed); idempotent and order-safe."""
    body = await _raw_body(request)
    status = await run_in_threadpool(
        services.webhooks.signed, "replicate", request.headers, body, request.query_params.get("gen")
    )
    return {"status": status}


@router.post("/cog/{gen_id}")
async def cog_webhook(
    gen_id: int,
    request: Request,
    services: ServicesDep,
    token: str = Query(description="The per-generation token we put in the URL"),
) -> dict[str, str]:
    """Prediction events from a self-hosted Cog server."""
    body = await _raw_body(request)
    status = await run_in_threadpool(
        services.webhooks.with_token, "cog", gen_id, token, request.headers, body
    )
    return {"status": status}
