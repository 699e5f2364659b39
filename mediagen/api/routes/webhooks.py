"""Provider callbacks. Not behind X-API-Key: Replicate's are verified by their Standard Webhooks
signature, Cog's (which cannot sign) by an unguessable per-generation token in the URL."""

from __future__ import annotations

import hmac
import logging
import time

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mediagen.api.deps import ServicesDep
from mediagen.api.errors import ErrorOut
from mediagen.errors import ApiError
from mediagen.generations.tables import Generation, WebhookDelivery

log = logging.getLogger("mediagen.webhooks")
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
            raise ApiError(413, "webhook body too large")
    return bytes(body)


def _replicate_secret(services: ServicesDep, *, refresh: bool = False) -> str | None:
    """The signing secret: from settings, else fetched from Replicate (the engine caches it).

    `refresh` re-fetches after a signature failure, so a rotated secret heals on its own; None
    means it was configured, so there is nothing to re-fetch.
    """
    if services.settings.replicate_webhook_secret:
        return None if refresh else services.settings.replicate_webhook_secret
    if refresh:
        # At most once a minute, so forged deliveries cannot turn us into a load on Replicate.
        last = float(services.extras.get("webhook_secret_refreshed_at", 0.0))
        if time.monotonic() - last < 60:
            return None
        services.extras["webhook_secret_refreshed_at"] = time.monotonic()
    engine = services.extras["engines"].get("replicate")
    if engine is None:
        raise ApiError(401, "Replicate is not configured on this server")
    try:
        return str(engine.fetch_webhook_secret(refresh=refresh))
    except Exception as exc:  # Replicate unreachable: ask for a redelivery instead of a 500
        raise ApiError(
            503, f"could not fetch the webhook signing secret: {exc}", headers={"Retry-After": "5"}
        ) from exc


@router.post("/replicate")
async def replicate_webhook(request: Request, services: ServicesDep) -> dict[str, str]:
    """Prediction events from Replicate (start, completed); idempotent and order-safe."""
    from starlette.concurrency import run_in_threadpool

    from mediagen.engines.replicate import state_from_prediction
    from mediagen.engines.webhook_signing import WebhookVerificationError, verify

    body = await _raw_body(request)
    secret = await run_in_threadpool(_replicate_secret, services)
    try:
        verify(secret or "", request.headers, body)
    except WebhookVerificationError as exc:
        fresh = await run_in_threadpool(lambda: _replicate_secret(services, refresh=True))
        try:
            if fresh is None or fresh == secret:
                raise
            verify(fresh, request.headers, body)
        except WebhookVerificationError:
            raise ApiError(401, f"webhook signature rejected: {exc}") from exc
    webhook_id = request.headers.get("webhook-id", "")
    marker = request.query_params.get("gen")
    return await run_in_threadpool(
        _apply_replicate, services, webhook_id, body, state_from_prediction, marker
    )


def _apply_replicate(
    services: ServicesDep, webhook_id: str, body: bytes, parse: object, marker: str | None = None
) -> dict[str, str]:
    import json

    with services.db.read() as s:
        if s.get(WebhookDelivery, webhook_id) is not None:
            return {"status": "duplicate"}
    from mediagen.engines.registry import main_key_for

    try:
        payload = json.loads(body)
        state = parse(payload, main_key=main_key_for(services.catalog, str(payload.get("model") or "")))  # type: ignore[operator]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, f"webhook body is not a prediction: {exc}") from exc
    with services.db.read() as s:
        gen_id = s.scalar(
            select(Generation.id).where(
                Generation.provider_ref == state.ref, Generation.engine == "replicate"
            )
        )
    if gen_id is None and marker and marker.isdigit():
        with services.db.read() as s:
            pending = s.get(Generation, int(marker))
        if (
            pending is not None
            and pending.provider_ref is None
            and pending.status in ("pending", "processing")
        ):
            # The webhook beat our own commit of the prediction id; ask Replicate to deliver again.
            raise ApiError(503, "prediction not recorded yet; retry", headers={"Retry-After": "1"})
    if gen_id is None:
        if marker and marker.isdigit() and state.status in ("starting", "processing"):
            # Ours (the marker says which generation) but not the prediction that generation kept:
            # a duplicate create that slipped through. Stop paying for it.
            engine = services.extras["engines"].get("replicate")
            if engine is not None:
                try:
                    engine.cancel(state.ref)
                except Exception as exc:  # best effort; it will finish and be ignored anyway
                    log.warning("could not cancel stray prediction %s: %s", state.ref, exc)
                return {"status": "stray prediction canceled"}
        # Acknowledge so Replicate stops retrying; it is not ours (or was deleted).
        return {"status": "unknown prediction"}
    applied = services.extras["pipeline"].apply_state(gen_id, state)
    try:
        with services.db.write() as s:
            s.add(WebhookDelivery(webhook_id=webhook_id))
    except IntegrityError:
        pass
    return {"status": "applied" if applied else "ignored"}


@router.post("/cog/{gen_id}")
async def cog_webhook(
    gen_id: int,
    request: Request,
    services: ServicesDep,
    token: str = Query(description="The per-generation token we put in the URL"),
) -> dict[str, str]:
    """Prediction events from a self-hosted Cog server."""
    from starlette.concurrency import run_in_threadpool

    from mediagen.engines.cog import state_from_cog_payload

    body = await _raw_body(request)

    def apply() -> dict[str, str]:
        import json

        with services.db.read() as s:
            row = s.get(Generation, gen_id)
        expected = (row.webhook_token if row else None) or ""
        if row is None or not hmac.compare_digest(expected.encode(), token.encode()):
            raise ApiError(401, "unknown generation or wrong token")
        from mediagen.engines.registry import main_key_for

        try:
            state = state_from_cog_payload(
                json.loads(body), main_key=main_key_for(services.catalog, row.model_id)
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, f"webhook body is not a prediction: {exc}") from exc
        if row.provider_ref and state.ref and state.ref != row.provider_ref:
            return {"status": "stale prediction"}
        applied = services.extras["pipeline"].apply_state(gen_id, state)
        return {"status": "applied" if applied else "ignored"}

    return await run_in_threadpool(apply)
