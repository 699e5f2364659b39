"""Mounts every router; a new router is added here and nowhere else."""

from __future__ import annotations

from fastapi import FastAPI


def include_routers(app: FastAPI) -> None:
    from mediagen.api.routes import blobs, campaigns, generations, health, keys, models, webhooks

    # Routes are matched in order: the byte-serving ones (players seek with many small ranges)
    # go first so they do not pay for trying every other route on each request.
    app.include_router(blobs.router)
    app.include_router(generations.router)
    app.include_router(health.router)
    app.include_router(keys.router)
    app.include_router(campaigns.router)
    app.include_router(models.router)
    app.include_router(webhooks.router)
    try:
        from mediagen.web.routes import mount_web
    except ImportError:  # the web UI is optional while it is being built
        return
    mount_web(app)
