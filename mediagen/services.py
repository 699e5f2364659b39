"""The service container and the composition root that builds it.

Every collaborator is made here, once, and handed to the ones that need it through their
constructors; routes, pages, the CLI and workers reach them through a frozen `Services`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mediagen.auth.service import AuthService
from mediagen.campaigns.service import CampaignService
from mediagen.catalog.added import AddedModels
from mediagen.catalog.browse import ModelBrowser
from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.engines.downloads import download
from mediagen.generations.assets import AssetRecords
from mediagen.generations.context import CoreContext
from mediagen.generations.downloads import DownloadService
from mediagen.generations.event_stream import EventStream
from mediagen.generations.exports import ExportService
from mediagen.generations.leases import Rows
from mediagen.generations.pipeline import Pipeline
from mediagen.generations.ports import JobQueue, Lane
from mediagen.generations.ratelimit import make_rate_limiter
from mediagen.generations.routing import EngineRouter, build_engines
from mediagen.generations.service import GenerationService
from mediagen.generations.takes import TakeService
from mediagen.generations.webhooks import WebhookIntake
from mediagen.generations.workers import WorkerRegistry, new_process_id
from mediagen.jobs.queue import HueyJobQueue, make_huey
from mediagen.kits.runner import KitRunner
from mediagen.kits.service import KitService
from mediagen.storage import make_store
from mediagen.storage.base import BlobStore
from mediagen.studio.bulk import BulkService
from mediagen.studio.comments import CommentService
from mediagen.studio.review import ReviewService
from mediagen.studio.shares import ShareService, reviewer_limiter


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    auth: AuthService
    store: BlobStore
    catalog: Catalog
    router: EngineRouter
    campaigns: CampaignService
    generations: GenerationService
    exports: ExportService
    pipeline: Pipeline
    queue: JobQueue
    webhooks: WebhookIntake
    takes: TakeService
    downloads: DownloadService
    events: EventStream
    shares: ShareService
    review: ReviewService
    comments: CommentService
    bulk: BulkService
    kits: KitService
    model_browser: ModelBrowser

    def close(self) -> None:
        self.db.dispose()


def build_services(settings: Settings, *, queue: JobQueue | None = None) -> Services:
    """Build everything from settings. `queue` replaces the huey queue (in-process tests pass a
    `MemoryJobQueue` and run its steps themselves)."""
    settings.ensure_dirs()
    db = Database(settings.resolved_database_url)
    store = make_store(settings, db)
    added_models = AddedModels(db)  # models added from Replicate: every process reads them
    # The packaged entries, `mediagen models sync` output in the data dir, and the added models.
    catalog = Catalog.load(overrides=settings.data_dir / "catalog", added=added_models)
    router = EngineRouter(settings, catalog, build_engines(settings, catalog))
    jobs = queue if queue is not None else HueyJobQueue(make_huey(settings), make_huey(settings, Lane.DEVICE))
    assets = AssetRecords(store)
    campaigns = CampaignService(db, assets)
    # A worker silent for a few heartbeats is dead; its leases are taken back without waiting.
    dead_after = timedelta(seconds=max(10.0, 4 * settings.reconcile_interval_seconds))
    workers = WorkerRegistry(db, new_process_id(), dead_after=dead_after)
    core = CoreContext(settings, db, Rows(settings, db), store, router, catalog, download, jobs, workers)
    pipeline = Pipeline(core)
    rate_limiter = make_rate_limiter(settings, db)  # shared by every API process
    generations = GenerationService(
        core, campaigns=campaigns, assets=assets, pipeline=pipeline, rate_limiter=rate_limiter
    )
    auth = AuthService(db)
    downloads = DownloadService(db, store)
    kits = KitService(
        settings=settings,
        db=db,
        catalog=catalog,
        router=router,
        campaigns=campaigns,
        generations=generations,
        downloads=downloads,
        store=store,
        runner=KitRunner(db, auth, generations, catalog),
    )
    return Services(
        settings=settings,
        db=db,
        auth=auth,
        store=store,
        catalog=catalog,
        router=router,
        campaigns=campaigns,
        generations=generations,
        exports=ExportService(core, generations),
        pipeline=pipeline,
        queue=jobs,
        webhooks=WebhookIntake(database=db, router=router, pipeline=pipeline),
        takes=TakeService(db),
        downloads=downloads,
        events=EventStream(db),
        shares=ShareService(db, settings, campaigns, reviewer_limiter()),
        review=ReviewService(db, campaigns),
        comments=CommentService(db),
        bulk=BulkService(db, assets, campaigns),
        kits=kits,
        model_browser=ModelBrowser(settings, catalog, added_models),
    )
