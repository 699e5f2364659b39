"""Which model makes a deliverable, the parameters it gets, and what it should cost.

Parameters are written with the request's names (`duration`, `aspect_ratio`, …) and pass through
the catalog entry's request map when the kit runs, exactly as a generate request's `parameters`
do; every value is fitted to the model's input schema here (clamped, snapped to an enum), so a
plan never asks for something its model refuses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mediagen.catalog.registry import ModelEntry
from mediagen.kits.planner_types import PlanningContext

ASPECT_RATIOS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}
DRAFT_ENGINES = frozenset({"synth"})  # offline drafts: never picked over the default a hosted one


def _types(prop: Mapping[str, Any]) -> list[str]:
    raw = prop.get("type")
    return [str(t) for t in raw] if isinstance(raw, list) else [str(raw)]


def _number(value: float, integer: bool) -> float | int:
    if integer or float(value).is_integer():
        return int(math.floor(value + 0.5))
    return round(float(value), 3)


def fit_value(prop: Mapping[str, Any], value: Any) -> Any:
    """`value` made acceptable to one input's schema, or None when nothing close is."""
    enum = prop.get("enum")
    if isinstance(enum, list):
        if value in enum:
            return value
        numbers = [e for e in enum if isinstance(e, int | float) and not isinstance(e, bool)]
        if isinstance(value, int | float) and numbers:
            return min(numbers, key=lambda e: (abs(e - value), e))
        return None
    types = _types(prop)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "number" not in types and "integer" not in types:
            return None
        integer = "number" not in types
        v = float(value)
        low, high = prop.get("minimum"), prop.get("maximum")
        step = 1.0 if integer else 0.1
        if isinstance(prop.get("exclusiveMinimum"), int | float):
            low = max(low if low is not None else -math.inf, prop["exclusiveMinimum"] + step)
        if isinstance(prop.get("exclusiveMaximum"), int | float):
            high = min(high if high is not None else math.inf, prop["exclusiveMaximum"] - step)
        multiple = prop.get("multipleOf")
        if isinstance(multiple, int | float) and multiple > 0:
            v = round(v / multiple) * multiple
        if low is not None:
            v = max(v, float(low))
        if high is not None:
            v = min(v, float(high))
        return _number(v, integer)
    if isinstance(value, str) and "string" not in types and prop.get("type") is not None:
        return None
    return value


def target(entry: ModelEntry, name: str) -> str | None:
    """The model input a request name lands on, or None when the model has no such input."""
    name = entry.request_map.get(name, name)
    return name if name in entry.properties else None


def usable(entry: ModelEntry | None, kind: str) -> bool:
    """A model the planner may give a prompt to: of the kind, takes a prompt, needs nothing else."""
    if entry is None or entry.kind != kind or entry.engine == "post":
        return False
    prompt = target(entry, "prompt")
    if prompt is None:
        return False
    required = set(entry.input_schema.get("required") or []) - {prompt} - set(entry.defaults)
    return not required


def _dimensions(entry: ModelEntry, aspect: str) -> dict[str, Any]:
    width, height = entry.properties["width"], entry.properties["height"]
    base = [
        v
        for v in (entry.defaults.get("width"), entry.defaults.get("height"), width.get("default"))
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    long_side = max(base) if base else 1024
    wide, tall = ASPECT_RATIOS[aspect]
    ratio = min(wide, tall) / max(wide, tall)
    size = (long_side, long_side * ratio) if wide >= tall else (long_side * ratio, long_side)
    return {"width": fit_value(width, size[0]), "height": fit_value(height, size[1])}


def aspect_parameters(entry: ModelEntry, aspect: str) -> dict[str, Any]:
    """How this model is asked for a frame shape: its aspect input, or a width and height."""
    for name in ("aspect_ratio", "aspect"):
        prop_name = target(entry, name)
        if prop_name is not None:
            value = fit_value(entry.properties[prop_name], aspect)
            return {name: value} if value == aspect else {}
    if "width" in entry.properties and "height" in entry.properties:
        return _dimensions(entry, aspect)
    return {}


def parameters(entry: ModelEntry, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The wanted values (request names; `aspect` is a frame shape) this model takes, fitted."""
    out: dict[str, Any] = {}
    for name, value in wanted.items():
        if value is None:
            continue
        if name == "aspect":
            out.update(aspect_parameters(entry, str(value)))
            continue
        prop_name = target(entry, name)
        if prop_name is None:
            continue
        fitted = fit_value(entry.properties[prop_name], value)
        if fitted is not None:
            out[name] = fitted
    return out


def fits(entry: ModelEntry, wanted: Mapping[str, Any]) -> bool:
    """Whether the model makes exactly what is wanted (durations it can reach, the frame shape)."""
    got = parameters(entry, wanted)
    for name, value in wanted.items():
        if name == "aspect":
            if not aspect_parameters(entry, str(value)):
                return False
        elif name == "duration" and name not in got:
            return False  # a model without a length input makes its own length
        elif name in got and not math.isclose(float(got[name]), float(value), abs_tol=0.01):
            return False
    return True


def choose(ctx: PlanningContext, kind: str, wants: Sequence[Mapping[str, Any]]) -> ModelEntry | None:
    """The default model of the kind when it is available and makes what is wanted; else the first
    available one that does, an offline draft model last; else the default (its values fitted),
    else any available one. Never a model that is not available."""
    candidates = [
        entry
        for model_id in ctx.available.get(kind, [])
        if usable(entry := ctx.catalog.get(model_id), kind) and entry is not None
    ]
    if not candidates:
        return None
    default = next((e for e in candidates if e.id == ctx.defaults.get(kind)), None)
    if default is not None and all(fits(default, w) for w in wants):
        return default
    full = [e for e in candidates if e.engine not in DRAFT_ENGINES]
    drafts = [e for e in candidates if e.engine in DRAFT_ENGINES]
    found = next((e for e in full if all(fits(e, w) for w in wants)), None)
    found = found or default or (full[0] if full else None)
    return found or next((e for e in drafts if all(fits(e, w) for w in wants)), candidates[0])


def longest(entry: ModelEntry) -> float | None:
    """The most seconds the model makes in one run, when its length input says (None: unknown)."""
    name = target(entry, "duration")
    if name is None:
        return None
    prop = entry.properties[name]
    enum = [e for e in prop.get("enum") or [] if isinstance(e, int | float) and not isinstance(e, bool)]
    if enum:
        return float(max(enum))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    return float(high) if isinstance(high, int | float) else None


def estimate(entry: ModelEntry | None, params: Mapping[str, Any], takes: int = 1) -> float:
    """The catalog's price for the deliverable (the model's own input names, as it prices them)."""
    if entry is None:
        return 0.0
    inputs = {entry.request_map.get(k, k): v for k, v in params.items()}
    return round(entry.estimate_cost(inputs) * max(1, takes), 6)


__all__ = [
    "aspect_parameters",
    "choose",
    "estimate",
    "fit_value",
    "fits",
    "longest",
    "parameters",
    "target",
    "usable",
]
