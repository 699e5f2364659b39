"""Which engines exist on this server and which one serves each model.

Routing is configuration: a catalog entry names its default engine, `MEDIAGEN_COG_ROUTES` sends a
model to a self-hosted Cog server instead, and a hosted model without a token has no engine (the
generation service then makes an offline draft or refuses, as configured).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mediagen.catalog.registry import Catalog
from mediagen.catalog.schemas import ModelOut
from mediagen.config import Settings
from mediagen.engines.base import Engine
from mediagen.errors import not_found
from mediagen.vocabulary import Kind

# The seed's defaults when a Replicate token is set; the offline synth otherwise.
HOSTED_DEFAULTS: dict[Kind, str] = {
    Kind.AUDIO: "meta/musicgen",
    Kind.VIDEO: "bytedance/seedance-1-lite",
    Kind.IMAGE: "google/nano-banana",
}
OFFLINE_DEFAULTS: dict[Kind, str] = {
    Kind.AUDIO: "synth/music",
    Kind.VIDEO: "synth/video",
    Kind.IMAGE: "synth/image",
}


@dataclass(frozen=True)
class Routing:
    """Which engine serves a model under the current settings, or why none can."""

    engine: str | None
    reason: str | None = None
    # An unreachable hosted model may be stood in for by an offline draft; a local model that
    # lacks weights or libraries may not: the user asked to run it here, so they get the fix.
    draftable: bool = True


def cog_engine_name(model_id: str) -> str:
    return f"cog:{model_id}"


def build_engines(settings: Settings, catalog: Catalog) -> dict[str, Engine]:
    """One engine per provider (and per Cog server), built from settings."""
    from mediagen.engines.post.engine import PostEngine
    from mediagen.engines.synth.engine import SynthEngine

    engines: dict[str, Engine] = {"synth": SynthEngine(), "post": PostEngine()}
    local = {e.id: e.local for e in catalog.list() if e.engine == "local" and e.local}
    if local:
        from mediagen.engines.local.engine import LocalEngine, LocalSpec

        engines["local"] = LocalEngine(
            {mid: LocalSpec.from_catalog(mid, block) for mid, block in local.items()},
            models_dir=settings.resolved_models_dir,
            device=settings.local_device,
            memory_gb=settings.local_memory_gb,
            batch_window_s=settings.local_batch_window_ms / 1000,
            max_batch=settings.local_max_batch,
            fast_decode=settings.local_fast_decode,
        )
    if settings.replicate_api_token:
        from mediagen.engines.replicate import ReplicateEngine

        engines["replicate"] = ReplicateEngine(
            token=settings.replicate_api_token,
            base_url=settings.replicate_base_url,
            version_for=lambda mid: e.version if (e := catalog.get(mid)) else None,
            is_official=lambda mid: bool((e := catalog.get(mid)) and e.official),
            main_key_for=catalog.main_key_for,
            webhook_secret=settings.replicate_webhook_secret,
            # Creates usually run inside an API request: wait out a short throttle there, and leave
            # a long one to the queue (the row stays pending and is retried with backoff).
            retry_budget_s=10.0,
        )
    for model_id, url in settings.cog_routes.items():
        from mediagen.engines.cog import CogEngine

        engines[cog_engine_name(model_id)] = CogEngine(
            base_url=url.rstrip("/"), main_key=catalog.main_key_for(model_id)
        )
    return engines


class EngineRouter:
    """The engines of this server and the routing of every catalog model onto one of them."""

    def __init__(self, settings: Settings, catalog: Catalog, engines: Mapping[str, Engine]) -> None:
        self.settings = settings
        self.catalog = catalog
        self.engines = dict(engines)

    def engine(self, name: str | None) -> Engine | None:
        return self.engines.get(name) if name else None

    def route(self, model_id: str) -> Routing:
        entry = self.catalog.get(model_id)
        if entry is None:
            return Routing(None, f"unknown model {model_id!r}")
        if model_id in self.settings.cog_routes:
            return Routing(cog_engine_name(model_id))
        if entry.engine in self.engines:
            reason = self.engines[entry.engine].unavailable_reason(model_id)
            if reason is not None:
                return Routing(None, reason, draftable=False)
            return Routing(entry.engine)
        if entry.engine == "replicate":
            return Routing(
                None,
                f"{model_id} runs on Replicate: set REPLICATE_API_TOKEN, or route it to a "
                "Cog server with MEDIAGEN_COG_ROUTES",
            )
        return Routing(None, f"engine {entry.engine!r} for {model_id} is not available on this server")

    def default_model(self, kind: str) -> str:
        hosted = HOSTED_DEFAULTS[Kind(kind)]
        return hosted if self.route(hosted).engine else OFFLINE_DEFAULTS[Kind(kind)]

    def describe(self, model_id: str) -> ModelOut:
        """A model as the API and the generate form show it: available here or not, and why."""
        entry = self.catalog.get(model_id)
        if entry is None:
            raise not_found("model", model_id)
        routing = self.route(model_id)
        owner = self.engines.get(entry.engine)
        return ModelOut(
            **entry.public(engine=routing.engine),
            available=routing.engine is not None,
            unavailable_reason=routing.reason,
            default=self.default_model(entry.kind) == model_id,
            local=(owner.model_details(model_id) or None) if owner is not None and entry.local else None,
        )

    def models(self, kind: str | None = None) -> list[ModelOut]:
        """Every model (optionally one kind), available ones first, then the default."""
        rows = [self.describe(e.id) for e in self.catalog.list(kind)]
        rows.sort(key=lambda m: (not m.available, not m.default, m.kind, m.id))
        return rows
