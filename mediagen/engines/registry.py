"""Which engines exist on this server and which one serves each model (routing is configuration)."""

from __future__ import annotations

from collections.abc import Callable

from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.engines.base import Engine
from mediagen.generations.service import Routing

# The seed's defaults when a Replicate token is set; the offline synth otherwise.
HOSTED_DEFAULTS = {
    "audio": "meta/musicgen",
    "video": "bytedance/seedance-1-lite",
    "image": "google/nano-banana",
}
OFFLINE_DEFAULTS = {"audio": "synth/music", "video": "synth/video", "image": "synth/image"}


def build_engines(settings: Settings, catalog: Catalog) -> dict[str, Engine]:
    from mediagen.engines.synth.engine import SynthEngine

    engines: dict[str, Engine] = {"synth": SynthEngine()}
    if settings.replicate_api_token:
        from mediagen.engines.replicate import ReplicateEngine

        engines["replicate"] = ReplicateEngine(
            token=settings.replicate_api_token,
            base_url=settings.replicate_base_url,
            version_for=lambda mid: e.version if (e := catalog.get(mid)) else None,
            is_official=lambda mid: bool((e := catalog.get(mid)) and e.official),
            main_key_for=lambda mid: main_key_for(catalog, mid),
            webhook_secret=settings.replicate_webhook_secret,
            # Creates usually run inside an API request: wait out a short throttle there, and leave
            # a long one to the queue (the row stays pending and is retried with backoff).
            retry_budget_s=10.0,
        )
    for model_id, url in settings.cog_routes.items():
        from mediagen.engines.cog import CogEngine

        engines[cog_engine_name(model_id)] = CogEngine(base_url=url.rstrip("/"))
    return engines


def main_key_for(catalog: Catalog, model_id: str) -> str | None:
    """Which key of an object output is the asset itself (riffusion: "audio")."""
    entry = catalog.get(model_id)
    return entry.output.get("main_key") if entry else None


def cog_engine_name(model_id: str) -> str:
    return f"cog:{model_id}"


def make_router(settings: Settings, catalog: Catalog, engines: dict[str, Engine]) -> Callable[[str], Routing]:
    def route(model_id: str) -> Routing:
        entry = catalog.get(model_id)
        if entry is None:
            return Routing(None, f"unknown model {model_id!r}")
        if model_id in settings.cog_routes:
            return Routing(cog_engine_name(model_id))
        if entry.engine in engines:
            return Routing(entry.engine)
        if entry.engine == "replicate":
            return Routing(
                None,
                f"{model_id} runs on Replicate: set REPLICATE_API_TOKEN, or route it to a "
                "Cog server with MEDIAGEN_COG_ROUTES",
            )
        return Routing(None, f"engine {entry.engine!r} for {model_id} is not available on this server")

    return route


def make_default_model(route: Callable[[str], Routing]) -> Callable[[str], str]:
    def default(kind: str) -> str:
        hosted = HOSTED_DEFAULTS[kind]
        return hosted if route(hosted).engine else OFFLINE_DEFAULTS[kind]

    return default
