"""Mounts every API router; a new router is added here and nowhere else."""

from __future__ import annotations

from fastapi import FastAPI

from mediagen.api.routes import (
    blobs,
    campaigns,
    compose,
    downloads,
    events,
    exports,
    generations,
    health,
    keys,
    me,
    models,
    plans,
    review,
    share_access,
    shares,
    takes,
    webhooks,
)


def include_routers(app: FastAPI) -> None:
    # Routes are matched in order: the byte-serving ones (players seek with many small ranges)
    # go first so they do not pay for trying every other route on each request.
    for module in (blobs, generations, compose, exports, health, keys, me, campaigns, models, webhooks):
        app.include_router(module.router)
    for module in (share_access, shares):  # review links: the token-scoped bytes first
        app.include_router(module.router)
    for module in (takes, downloads):
        app.include_router(module.router)
    app.include_router(plans.router)  # kit plans: brief → plan → run → kit
    app.include_router(review.router)  # edits, review history, comments, bulk actions
    app.include_router(events.router)  # live progress (Server-Sent Events)
