"""The web application: the services (`services.build_services`) behind the JSON API and the
pages, and in-process workers unless told otherwise."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from mediagen import __version__
from mediagen.api.byte_path import ByteRoutes
from mediagen.api.docs import mount_docs
from mediagen.api.errors import install_error_handlers
from mediagen.api.limits import RequestLimits
from mediagen.api.routes import include_routers
from mediagen.api.security import SecurityHeaders
from mediagen.config import Settings
from mediagen.generations.ports import Lane
from mediagen.jobs.queue import HueyJobQueue
from mediagen.jobs.worker import WorkerHost
from mediagen.services import Services, build_services
from mediagen.web import mount_web

log = logging.getLogger("mediagen")


def secret_key(settings: Settings) -> str:
    """The session-signing key: from settings, else made once and kept in the data dir."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        settings.ensure_dirs()
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def worker_host(services: Services, lanes: frozenset[Lane] = frozenset(Lane)) -> WorkerHost:
    """The huey consumers of `lanes` plus the reconcile heartbeat, bound to this process's
    pipeline."""
    if not isinstance(services.queue, HueyJobQueue):
        raise TypeError("workers consume the huey queue; these services were built with another")
    return WorkerHost(
        services.queue,
        services.pipeline,
        plans=services.kits.runner,
        workers=services.settings.workers,
        interval=services.settings.reconcile_interval_seconds,
        lanes=lanes,
        device_workers=services.settings.local_max_batch,
    )


def create_app(settings: Settings | None = None, *, run_workers: bool | None = None) -> FastAPI:
    settings = settings or Settings()
    services = build_services(settings)
    workers = settings.run_consumer if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host = None
        if workers:
            host = worker_host(services)
            host.start()
        try:
            yield
        finally:
            if host is not None:
                host.stop()
            services.close()

    app = FastAPI(
        title="Mediagen",
        version=__version__,
        description="Generate music, images and video for campaigns, and keep every asset. "
        "Authenticate with the `X-API-Key` header.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by api/docs.py, so it works offline
        redoc_url=None,
    )
    app.state.services = services
    # Innermost: a request for an asset's bytes with a key is answered without the router.
    app.add_middleware(ByteRoutes, services=services)
    # Added before the session middleware, so it runs inside it (it checks session callers too).
    app.add_middleware(RequestLimits, services=services)
    app.add_middleware(SecurityHeaders, https=(settings.public_url or "").startswith("https"))
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(settings),
        session_cookie="mediagen_session",
        same_site="lax",
        https_only=(settings.public_url or "").startswith("https"),
        max_age=14 * 24 * 3600,
    )
    install_error_handlers(app)
    include_routers(app)
    mount_docs(app)
    mount_web(app)
    return app
