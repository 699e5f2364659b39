"""Liveness and readiness: no key needed, so load balancers and scripts can probe it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from mediagen import __version__
from mediagen.api.deps import ServicesDep

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(description="`ok`, or `degraded` when the database or the queue is down")
    version: str
    engines: list[str]
    database: str
    queue: str
    queue_pending: int | None = None


@router.get(
    "/health",
    response_class=JSONResponse,
    responses={
        200: {"model": HealthOut, "description": "Database and queue reachable"},
        503: {"model": HealthOut, "description": "The database or the queue is down"},
    },
)
def health(services: ServicesDep) -> JSONResponse:
    """Database and queue reachability; 503 when either is down."""
    checks: dict[str, Any] = {}
    try:
        with services.db.read() as s:
            s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't raise: this route must always answer
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        checks["queue_pending"] = services.queue.pending()
        checks["queue"] = "ok"
    except Exception as exc:
        checks["queue"] = f"error: {type(exc).__name__}"
    ok = checks["database"] == "ok" and checks["queue"] == "ok"
    engines = sorted(services.router.engines)
    body = {"status": "ok" if ok else "degraded", "version": __version__, "engines": engines, **checks}
    return JSONResponse(body, status_code=200 if ok else 503)
