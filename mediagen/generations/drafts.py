"""The offline draft: a hosted model that cannot be reached here is stood in for by the synth.

When the server has no way to run the model asked for (no Replicate token, no Cog route) and
`offline_fallback` is on, the generation is made with the kind's offline model instead, and the
response and the asset say so rather than pass the draft off as the model that was asked for.
Inputs the draft model does not take are dropped and listed; a stored asset named among them is
still checked, so another client's asset is a 422 here too, never a silent drop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mediagen.catalog.registry import ModelEntry, check_model_kind
from mediagen.errors import invalid
from mediagen.generations.context import CoreContext
from mediagen.generations.routing import Routing

# Checks the stored assets among the inputs a draft drops: (requested entry, dropped names,
# named fields, parameters) -> None, raising as a request with those inputs would.
CheckDropped = Callable[[ModelEntry, list[str], dict[str, Any], dict[str, Any]], None]


def routing_reason(routing: Routing) -> str:
    return routing.reason or "no engine"


@dataclass(frozen=True)
class Resolved:
    """The model a request will run on, the inputs it keeps, and the notice when it is a draft."""

    model_id: str
    entry: ModelEntry
    routing: Routing
    named: dict[str, Any]
    parameters: dict[str, Any]
    notice: dict[str, Any] = field(default_factory=dict)


def resolve_model(
    ctx: CoreContext,
    kind: str,
    model_id: str,
    named: dict[str, Any],
    parameters: dict[str, Any],
    check_dropped: CheckDropped,
) -> Resolved:
    """The model asked for when it can run here; else the offline draft (when allowed), else a
    422 naming `model` with the reason."""
    settings, catalog, router = ctx.settings, ctx.catalog, ctx.router
    entry = check_model_kind(catalog.get(model_id), model_id, kind)
    routing = router.route(model_id)
    if routing.engine is not None:
        return Resolved(model_id, entry, routing, named, parameters)
    fallback = router.default_model(kind) if settings.offline_fallback else None
    if (
        not routing.draftable
        or fallback is None
        or fallback == model_id
        or router.route(fallback).engine is None
    ):
        raise invalid("model", routing_reason(routing))
    requested, requested_entry = model_id, entry
    entry = check_model_kind(catalog.get(fallback), fallback, kind)
    takes = entry.properties
    dropped = sorted(
        {k for k in named if entry.request_map.get(k, k) not in takes}
        | {k for k in parameters if entry.request_map.get(k, k) not in takes}
    )
    check_dropped(requested_entry, dropped, named, parameters)
    return Resolved(
        fallback,
        entry,
        router.route(fallback),
        {k: v for k, v in named.items() if entry.request_map.get(k, k) in takes},
        {k: v for k, v in parameters.items() if entry.request_map.get(k, k) in takes},
        {
            "requested_model": requested,
            "ignored_inputs": dropped,
            "notice": f"{requested} is not reachable ({routing_reason(router.route(requested))}); "
            f"made an offline draft with {fallback} instead",
        },
    )
