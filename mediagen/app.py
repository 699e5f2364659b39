"""The composition root: settings in, a FastAPI app with every service wired out."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from mediagen import __version__
from mediagen.api.errors import install_error_handlers
from mediagen.auth.service import AuthService
from mediagen.campaigns.service import CampaignService
from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.engines.downloads import download
from mediagen.engines.registry import build_engines, make_default_model, make_router
from mediagen.generations.pipeline import Pipeline
from mediagen.generations.service import GenerationService
from mediagen.generations.tables import Generation
from mediagen.jobs.queue import WorkerHost, bind_tasks, make_huey
from mediagen.services import Services
from mediagen.storage import make_store

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


def build_services(settings: Settings) -> Services:
    settings.ensure_dirs()
    db = Database(settings.resolved_database_url)
    store = make_store(settings, db)
    catalog = Catalog.load(overrides=settings.data_dir / "catalog")  # `mediagen models sync` output
    engines = build_engines(settings, catalog)
    route = make_router(settings, catalog, engines)
    campaigns = CampaignService(db)
    generations = GenerationService(
        settings=settings,
        database=db,
        catalog=catalog,
        campaigns=campaigns,
        store=store,
        route=route,
        default_model=make_default_model(route),
    )
    campaigns.purge_assets = generations.purge
    campaigns.free_blobs = generations.free_blobs

    def webhook_url_for(row: Generation) -> str | None:
        if row.engine == "replicate":
            return (
                f"{settings.public_url.rstrip('/')}/api/webhooks/replicate" if settings.public_url else None
            )
        if row.engine.startswith("cog:"):
            base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
            return f"{base}/api/webhooks/cog/{row.id}?token={row.webhook_token}"
        return None

    pipeline = Pipeline(
        settings=settings,
        database=db,
        store=store,
        engines=engines,
        download=download,
        webhook_url_for=webhook_url_for,
        catalog=catalog,
    )
    huey = make_huey(settings)
    queue = bind_tasks(huey, pipeline)
    generations.enqueue = lambda gid: queue.submit(gid, 0)
    generations.submit_inline = lambda gid: pipeline.submit(gid, inline=True)
    generations.ingest_file = pipeline.ingest_file
    auth = AuthService(db)
    return Services(
        settings=settings,
        db=db,
        auth=auth,
        store=store,
        campaigns=campaigns,
        catalog=catalog,
        generations=generations,
        extras={"engines": engines, "pipeline": pipeline, "huey": huey, "queue": queue},
    )


def create_app(settings: Settings | None = None, *, run_workers: bool | None = None) -> FastAPI:
    settings = settings or Settings()
    services = build_services(settings)
    workers = settings.run_consumer if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host = None
        if workers:
            host = WorkerHost(
                services.extras["huey"],
                services.extras["pipeline"],
                workers=settings.workers,
                interval=settings.reconcile_interval_seconds,
            )
            host.start()
        try:
            yield
        finally:
            if host is not None:
                host.stop()
            services.db.dispose()

    app = FastAPI(
        title="Mediagen",
        version=__version__,
        description="Generate music, images and video for campaigns, and keep every asset. "
        "Authenticate with the `X-API-Key` header.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key(settings),
        session_cookie="mediagen_session",
        same_site="lax",
        https_only=(settings.public_url or "").startswith("https"),
        max_age=14 * 24 * 3600,
    )
    install_error_handlers(app)
    from mediagen.api.routes import include_routers

    include_routers(app)
    return app
