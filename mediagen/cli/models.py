"""`mediagen models`: the catalog as this machine sees it, hosted schemas refreshed from
Replicate, and local models' weights pulled from Hugging Face."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mediagen.cli.common import _fail, _settings, models_app
from mediagen.cli.remote import _kind_or_fail

if TYPE_CHECKING:
    from mediagen.generations.routing import EngineRouter


def _router() -> EngineRouter:
    from mediagen.catalog.registry import Catalog
    from mediagen.generations.routing import EngineRouter, build_engines

    settings = _settings()
    catalog = Catalog.load(overrides=settings.data_dir / "catalog")
    return EngineRouter(settings, catalog, build_engines(settings, catalog))


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
    """Refresh hosted models' input schemas from Replicate (needs REPLICATE_API_TOKEN)."""
    from mediagen.catalog.sync import sync_models

    settings = _settings()
    if not settings.replicate_api_token:
        raise typer.BadParameter("REPLICATE_API_TOKEN is not set")
    for line in sync_models(settings, model_id or None):
        print(line)
