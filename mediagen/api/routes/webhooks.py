"""Provider callbacks. Not behind X-API-Key: signed ones (Replicate) are verified by their
Standard Webhooks signature, token ones (Cog, which cannot sign) by an unguessable
per-generation token in the URL. The use case is `generations.webhooks.WebhookIntake`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from mediagen.api.deps import ServicesDep
from mediagen.api.errors import ErrorOut
from mediagen.api.limits import MAX_WEBHOOK_BYTES, GenId
from mediagen.errors import PayloadTooLarge
from mediagen.vocabulary import MAX_ID

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body is not a prediction"},
    401: {"model": ErrorOut, "description": "Bad or missing signature/token"},
    413: {"model": ErrorOut, "description": f"Body over {MAX_WEBHOOK_BYTES // 2**20} MiB"},
    422: {"model": ErrorOut, "description": "A path or query value is invalid; `errors` names it"},
}
# The prediction event as the provider sends it; only the provider's own schema says more.
PREDICTION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
    }
}

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], responses=ERRORS)


async def _raw_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge("webhook body too large")
    return bytes(body)


@router.post(
    "/replicate",
    openapi_extra=PREDICTION_BODY,
    responses={503: {"model": ErrorOut, "description": "Not ready for it yet; redeliver (Retry-After)"}},
)
async def replicate_webhook(
    request: Request,
    services: ServicesDep,
    gen: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The generation the prediction was made for")
    ] = None,
) -> dict[str, str]:
    """Prediction events from Replicate (start, completed); idempotent and order-safe."""
    body = await _raw_body(request)
    marker = str(gen) if gen is not None else None
    status = await run_in_threadpool(services.webhooks.signed, "replicate", request.headers, body, marker)
    return {"status": status}


@router.post("/cog/{gen_id}", openapi_extra=PREDICTION_BODY)
async def cog_webhook(
    gen_id: GenId,
    request: Request,
    services: ServicesDep,
    token: Annotated[
        str, Query(min_length=1, max_length=128, description="The per-generation token we put in the URL")
    ],
) -> dict[str, str]:
    """Prediction events from a self-hosted Cog server."""
    body = await _raw_body(request)
    status = await run_in_threadpool(
        services.webhooks.with_token, "cog", gen_id, token, request.headers, body
    )
    return {"status": status}
