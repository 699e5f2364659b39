"""`mediagen models`: the catalog as this machine sees it, hosted schemas refreshed from
Replicate, models added from Replicate by id (and removed), and local models' weights pulled from
Hugging Face."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mediagen.cli.common import COMMAND_LINE, _existing_database, _fail, _settings, models_app
from mediagen.cli.remote import _kind_or_fail

if TYPE_CHECKING:
    from mediagen.catalog.added import AddedModels
    from mediagen.catalog.browse import ModelBrowser
    from mediagen.config import Settings
    from mediagen.generations.routing import EngineRouter


def _added(settings: Settings) -> AddedModels | None:
    """The server's added models, when this machine has its database (else the packaged only)."""
    from sqlalchemy.engine import make_url

    from mediagen.catalog.added import AddedModels
    from mediagen.db.session import Database

    url = settings.resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:") or not Path(str(parsed.database)).is_file():
            return None
    return AddedModels(Database(url))


def _router() -> EngineRouter:
    from mediagen.catalog.registry import Catalog
    from mediagen.generations.routing import EngineRouter, build_engines

    settings = _settings()
    catalog = Catalog.load(overrides=settings.data_dir / "catalog", added=_added(settings))
    return EngineRouter(settings, catalog, build_engines(settings, catalog))


def _browser(*, token: bool = True) -> ModelBrowser:
    """The model browser on this server's database (which must exist; migrated if behind)."""
    from mediagen.catalog.added import AddedModels
    from mediagen.catalog.browse import ModelBrowser
    from mediagen.catalog.registry import Catalog
    from mediagen.db.migrate import upgrade
    from mediagen.db.session import Database

    settings = _settings()
    if token and not settings.replicate_api_token:
        raise typer.BadParameter("REPLICATE_API_TOKEN is not set")
    url = _existing_database(settings)
    upgrade(url)
    store = AddedModels(Database(url))
    catalog = Catalog.load(overrides=settings.data_dir / "catalog", added=store)
    return ModelBrowser(settings, catalog, store)


def _size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return ""
    return f"{size_bytes / 1024**3:.2f} GB" if size_bytes >= 1024**3 else f"{size_bytes / 1024**2:.1f} MB"


@models_app.command("list")
def models_list(
    kind: Annotated[str | None, typer.Option(help="audio, image or video")] = None,
) -> None:
    """Models in the catalog: whether each runs here and, if not, the command that fixes it; for
    local models where their weights are and how big."""
    if kind is not None:
        _kind_or_fail(kind, "--kind")
    for m in _router().models(kind):
        mark = "ready" if m.available else "unavailable"
        print(f"{m.id:36} {m.kind:6} {m.engine:10} {mark:12} {m.title}")
        weights = (m.local or {}).get("weights") or {}
        if weights.get("present"):
            size = _size(weights.get("size_bytes"))
            print(f"{'':36} weights: {size} in {weights['path']} ({weights['source']})")
        if not m.available and m.unavailable_reason:
            print(f"{'':36} {m.unavailable_reason}")


@models_app.command("pull")
def models_pull(
    model_id: Annotated[str, typer.Argument(help="A local model id, e.g. local/musicgen-small")],
) -> None:
    """Download a local model's weights into MEDIAGEN_MODELS_DIR (resumable: run it again after an
    interruption)."""
    from mediagen.engines.local.engine import LocalEngine
    from mediagen.engines.local.weights import PullError, pull

    router = _router()
    entry = router.catalog.get(model_id)
    engine = router.engines.get("local")
    if entry is None or entry.engine != "local" or not isinstance(engine, LocalEngine):
        local = ", ".join(e.id for e in router.catalog.list() if e.engine == "local")
        raise typer.BadParameter(
            f"{model_id!r} is not a local model; local models: {local}", param_hint="MODEL_ID"
        )
    spec = engine.specs[model_id]
    settings = _settings()
    found = engine.weights(model_id)
    if found is not None:
        print(f"{model_id}: weights already present in {found.path} ({_size(found.size_bytes)})")
        return
    about = f" (about {spec.download_gb:g} GB)" if spec.download_gb else ""
    print(f"Downloading {spec.repo_id}{about} into {settings.resolved_models_dir / spec.repo_id}", flush=True)
    try:
        path = pull(spec.repo_id, settings.resolved_models_dir, ignore=list(spec.ignore))
    except PullError as exc:
        _fail(str(exc))
    print(f"{model_id}: ready ({path})")
    missing = engine.unavailable_reason(model_id)
    if missing:
        print(f"note: {missing}")


@models_app.command("sync")
def models_sync(
    model_id: Annotated[
        list[str] | None, typer.Argument(help="Model ids; default every hosted model")
    ] = None,
) -> None:
    """Refresh hosted models' input schemas from Replicate (needs REPLICATE_API_TOKEN), and with
    no model ids also the hardware SKUs their actual cost is priced by."""
    from mediagen.catalog.sync import sync_hardware, sync_models

    settings = _settings()
    if not settings.replicate_api_token:
        raise typer.BadParameter("REPLICATE_API_TOKEN is not set")
    for line in sync_models(settings, model_id or None):
        print(line)
    if not model_id:
        for line in sync_hardware(settings):
            print(line)


@models_app.command("add")
def models_add(
    model_id: Annotated[str, typer.Argument(help="A Replicate model, owner/name")],
    version: Annotated[str | None, typer.Option(help="A version id to pin; default its latest")] = None,
    kind: Annotated[
        str | None, typer.Option(help="audio, image or video: only when its example output does not tell")
    ] = None,
) -> None:
    """Add a Replicate model to the catalog by id (needs REPLICATE_API_TOKEN and the server's
    database): its schema is read from Replicate and its kind inferred from its output. Every
    process of the server sees it within a second; `models sync` refreshes it."""
    from mediagen.errors import MediagenError

    if kind is not None:
        _kind_or_fail(kind, "--kind")
    browser = _browser()
    try:
        entry = browser.add(COMMAND_LINE, model_id, version, kind)
    except MediagenError as exc:
        _fail(exc.detail)
    pinned = f"version {entry.version[:12]}" if entry.version else "its official endpoint"
    inputs = len(entry.properties)
    print(f"Added {entry.id}: makes {entry.kind}, {inputs} inputs, runs {pinned}")
    for field, target in sorted(entry.request_map.items()):
        print(f"  request field {field} → its input {target}")
    print(f'Generate with: mediagen generate {entry.kind} "your prompt" --model {entry.id}')


@models_app.command("remove")
def models_remove(
    model_id: Annotated[str, typer.Argument(help="A model added from Replicate, owner/name")],
) -> None:
    """Remove a model added from Replicate (assets made with it stay; built-in models stay)."""
    from mediagen.errors import MediagenError

    browser = _browser(token=False)
    try:
        browser.remove(COMMAND_LINE, model_id)
    except MediagenError as exc:
        _fail(exc.detail)
    print(f"Removed {model_id}")
