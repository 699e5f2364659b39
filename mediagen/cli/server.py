"""Run the service: `serve`, `worker`, `db upgrade`, backup, restore, doctor and `storage migrate`."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from mediagen.cli.common import (
    _configure_logging,
    _existing_database,
    _fail,
    _prepare,
    _settings,
    app,
    db_app,
    storage_app,
)
from mediagen.config import Settings
from mediagen.storage.base import BlobStoreError


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (MEDIAGEN_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MEDIAGEN_PORT)")] = None,
    workers: Annotated[
        bool | None,
        typer.Option(
            "--workers/--no-workers", help="Run job workers in this process (default MEDIAGEN_RUN_CONSUMER)"
        ),
    ] = None,
) -> None:
    """Run the API, the web UI and (by default) the job workers."""
    import uvicorn

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)
    _configure_logging(settings)
    _prepare(settings)
    from mediagen.app import create_app

    application = create_app(settings, run_workers=workers)
    print(
        f"Mediagen listening on http://{settings.host}:{settings.port} (data in {settings.data_dir})",
        flush=True,
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            help="Lanes to consume: io (submits, polls, downloads, ingest) and/or local (jobs on this "
            "machine's GPU); repeat for both. Default: both",
        ),
    ] = None,
) -> None:
    """Run job workers only (scale out next to one or more `serve --no-workers`)."""
    from mediagen.app import worker_host
    from mediagen.generations.ports import Lane
    from mediagen.services import build_services

    names = queue or [lane.value for lane in Lane]
    unknown = [n for n in names if n not in {lane.value for lane in Lane}]
    if unknown:
        raise typer.BadParameter(f"unknown queue {unknown[0]!r}; use io or local", param_hint="--queue")
    settings = _settings()
    _configure_logging(settings)
    _prepare(settings)
    host = worker_host(build_services(settings), frozenset(Lane(n) for n in names))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    host.start()
    print(f"Mediagen worker running ({', '.join(sorted(names))}) with {settings.workers} threads", flush=True)
    stop.wait()
    host.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (creates the database when there is none yet)."""
    from mediagen.db.migrate import current, upgrade

    settings = _settings()
    settings.ensure_dirs()
    upgrade(settings.resolved_database_url)
    print(f"Database at revision {current(settings.resolved_database_url)}")


@db_app.command("vacuum")
def db_vacuum() -> None:
    """Shrink the SQLite file now, and switch an older one to giving space back as it goes."""
    from mediagen.cli.common import _existing_database
    from mediagen.db.session import Database

    settings = _settings()
    url = _existing_database(settings)
    path = Path(url.split("///", 1)[-1]) if url.startswith("sqlite") else None
    before = path.stat().st_size if path else 0
    db = Database(url)
    try:
        db.compact()
    finally:
        db.dispose()
    if path is None:
        print("PostgreSQL reclaims space with its own autovacuum; nothing to do")
    else:
        print(f"{path}: {before / 2**20:.1f} MB -> {path.stat().st_size / 2**20:.1f} MB")


def _report(run: Callable[[], Any]) -> NoReturn:
    """Run a maintenance step and print its report; exit 2 when it refused, 1 on problems."""
    from mediagen.maintenance import MaintenanceError

    try:
        report = run()
    except MaintenanceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    print(report.render())
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def backup(dest: Annotated[Path, typer.Argument(help="A new or empty directory")]) -> None:
    """Copy the SQLite database (and fs blobs) into DEST; safe while the server runs."""
    from mediagen.maintenance import backup as run_backup

    _report(lambda: run_backup(_settings(), dest, progress=lambda _step, message: print(message, flush=True)))


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="A directory made by `mediagen backup`")],
    force: Annotated[
        bool, typer.Option(help="Replace a non-empty data dir (moved aside, not deleted)")
    ] = False,
) -> None:
    """Restore a backup into the data dir, then verify every blob. Stop the server first."""
    from mediagen.maintenance import restore as run_restore

    _report(lambda: run_restore(_settings(), src, force=force))


@app.command()
def doctor(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; change nothing")] = False,
    deep: Annotated[bool, typer.Option(help="Also hash every blob (reads all bytes)")] = False,
) -> None:
    """Check records against stored bytes (missing files, refcounts, orphans, stuck jobs); repair them."""
    from mediagen.maintenance import doctor as run_doctor
    from mediagen.services import build_services

    services = build_services(_settings())
    try:
        report = run_doctor(services, repair=not dry_run, deep=deep)
    finally:
        services.close()
    print(report.render())
    raise typer.Exit(0 if report.ok or not dry_run else 1)


@storage_app.command("migrate")
def storage_migrate(
    to: Annotated[str, typer.Option("--to", help="Target backend: db, fs or s3 (configured by MEDIAGEN_*)")],
) -> None:
    """Copy every blob into another backend, verifying each sha256; resumable, source untouched."""
    from mediagen.maintenance.storage_move import move_storage

    if to not in ("db", "fs", "s3"):
        raise typer.BadParameter(f"unknown backend {to!r}; use db, fs or s3", param_hint="--to")
    settings = _settings()
    _existing_database(settings)

    def show(report: Any) -> None:
        print(f"… {report.copied} copied, {report.skipped} already there", flush=True)

    try:
        report = move_storage(settings, to, progress=show)
    except (ValueError, BlobStoreError) as exc:
        _fail(str(exc))
    print(report.render())
    raise typer.Exit(0 if report.ok else 1)
