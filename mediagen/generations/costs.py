"""The actual cost of a generation, recorded beside the catalog's estimate (`cost_usd`).

Hosted: the provider's `metrics.predict_time` times the price per second of the model's
hardware (`price.hardware` in the catalog, prices in `catalog/hardware.py`); an official model is
billed by what it made, at its catalog price. A model the catalog names for one engine but this
server routes to another (a self-hosted Cog server) costs nothing per second here. Inline engines
(synth, local models, post-production) run on this machine: their compute time is the run's wall
time and their cost is what the engine reports (0).

A provider may say the prediction finished before it sends its metrics (Replicate's "output"
webhook comes before "completed"), so the figures are also taken from news that moves nothing
else, once, while the row has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mediagen.catalog.hardware import actual_cost
from mediagen.catalog.registry import Catalog
from mediagen.db.base import utcnow
from mediagen.generations.tables import Generation


def predict_seconds(metrics: Mapping[str, Any]) -> float | None:
    value = metrics.get("predict_time")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def hosted_cost(
    catalog: Catalog, row: Generation, metrics: Mapping[str, Any], *, succeeded: bool = True
) -> dict[str, Any]:
    """`compute_seconds` and `actual_cost_usd` for a finished remote prediction, as far as they
    can be told from `metrics` (either may be missing); nothing the row already holds. A failed
    prediction is billed for its time, but an output-billed one made nothing to bill."""
    seconds = predict_seconds(metrics)
    values: dict[str, Any] = {}
    if seconds is not None and row.compute_seconds is None:
        values["compute_seconds"] = round(seconds, 4)
    if row.actual_cost_usd is not None:
        return values
    entry = catalog.get(row.model_id)
    if entry is None:
        return values
    if entry.engine != row.engine:  # routed to our own server: no provider bill
        values["actual_cost_usd"] = 0.0
        return values
    if not succeeded and not entry.price.get("hardware"):
        values["actual_cost_usd"] = 0.0
        return values
    cost = actual_cost(entry, row.parameters, seconds, catalog.hardware)
    if cost is not None:
        values["actual_cost_usd"] = cost
    return values


def inline_cost(started: datetime | None, engine_cost: float) -> dict[str, Any]:
    """An inline run's figures: its wall time since the claim, and the engine's own cost."""
    seconds = max(0.0, (utcnow() - started).total_seconds()) if started is not None else None
    return {
        "compute_seconds": round(seconds, 4) if seconds is not None else None,
        "actual_cost_usd": round(max(0.0, engine_cost), 6),
    }
