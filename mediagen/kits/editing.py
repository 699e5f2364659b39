"""A plan's document as stored, checked and edited.

Every document that is saved goes through `checked`: the schema (`PlanDocument`), then what the
schema alone cannot say (each model exists in the catalog and makes the deliverable's kind, a
clip's scene exists, a spot's channel is a preset, nothing depends on itself), then the server's
estimate per deliverable. An edit (`edited`) keeps what the server owns, follows a scene reorder
into the clips and spots, and refuses to change a deliverable that has already started.

The stored JSON is the document plus, under `_run`, what a run was started with (an admin's
budget override), which the document's own schema does not hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from mediagen.campaigns.channels import CHANNELS
from mediagen.catalog.registry import Catalog
from mediagen.errors import Conflict, invalid
from mediagen.generations.compose import COMPOSE_MODEL, MASTER_MODEL
from mediagen.kits.plan import Deliverable, PlanDocument, Scene
from mediagen.kits.planner_models import estimate
from mediagen.kits.schemas import PlanEdit

RUN_KEY = "_run"
ROLE_KINDS: dict[str, frozenset[str]] = {
    "music": frozenset({"audio"}),
    "visual": frozenset({"image"}),
    "clip": frozenset({"video"}),
    "spot": frozenset({"video", "audio"}),
}
SPOT_MODELS = {"video": COMPOSE_MODEL, "audio": MASTER_MODEL}
# What an edit may change on a deliverable; the rest (status, asset, error, estimate) is the server's.
EDITABLE = frozenset(Deliverable.model_fields) - {"status", "asset", "error", "estimate_usd"}


def load(raw: Mapping[str, Any]) -> PlanDocument:
    """The stored JSON as a document (the run options left out)."""
    return PlanDocument.model_validate({k: v for k, v in raw.items() if k != RUN_KEY})


def run_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    found = raw.get(RUN_KEY)
    return dict(found) if isinstance(found, Mapping) else {}


def dump(doc: PlanDocument, run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out = doc.model_dump(mode="json")
    if run:
        out[RUN_KEY] = dict(run)
    return out


def dependency_order(items: Sequence[Deliverable]) -> list[Deliverable]:
    """The deliverables with everything each uses before it (stable otherwise); a cycle is a 422."""
    by_id = {d.id: d for d in items}
    placed: dict[str, Deliverable] = {}
    visiting: set[str] = set()

    def place(d: Deliverable, chain: tuple[str, ...]) -> None:
        if d.id in placed:
            return
        if d.id in visiting:
            loop = " → ".join((*chain, d.id))
            raise invalid("deliverables", f"deliverables depend on each other in a circle: {loop}")
        visiting.add(d.id)
        for used in d.uses:
            if used in by_id:
                place(by_id[used], (*chain, d.id))
        visiting.discard(d.id)
        placed[d.id] = d

    for d in items:
        place(d, ())
    return list(placed.values())


def _check_item(
    i: int, d: Deliverable, catalog: Catalog, scenes: set[int], kinds: Mapping[str, str]
) -> Deliverable:
    where = f"deliverables[{i}]"
    if d.kind not in ROLE_KINDS[d.role]:
        allowed = " or ".join(sorted(ROLE_KINDS[d.role]))
        raise invalid(f"{where}.kind", f"a {d.role} is {allowed}, not {d.kind}")
    model = d.model or (SPOT_MODELS[d.kind] if d.role == "spot" else None)
    if model is None:
        raise invalid(f"{where}.model", "field required: the catalog model that makes it")
    entry = catalog.get(model)
    if entry is None:
        raise invalid(f"{where}.model", f"unknown model {model!r}; GET /api/models lists them")
    if entry.kind != d.kind:
        raise invalid(f"{where}.model", f"{model} makes {entry.kind}, not {d.kind}")
    if d.role == "spot":
        if model != SPOT_MODELS[d.kind]:
            raise invalid(f"{where}.model", f"a {d.kind} spot is made by {SPOT_MODELS[d.kind]}")
        if d.channel is not None and d.channel not in CHANNELS:
            raise invalid(
                f"{where}.channel", f"unknown channel {d.channel!r}; presets: {', '.join(CHANNELS)}"
            )
        used = [kinds[u] for u in d.uses]
        if d.kind == "video" and not any(k in ("video", "image") for k in used):
            raise invalid(f"{where}.uses", "a video spot needs at least one clip or visual")
        if "audio" not in used and d.kind == "audio":
            raise invalid(f"{where}.uses", "an audio spot needs its music bed")
    elif entry.engine == "post":
        raise invalid(f"{where}.model", f"{model} composes spots; a {d.role} needs a generating model")
    if d.role == "clip" and d.scene is not None and d.scene not in scenes:
        raise invalid(f"{where}.scene", f"there is no scene {d.scene}")
    return d.model_copy(update={"model": model, "estimate_usd": estimate(entry, d.parameters, d.takes)})


def checked(doc: PlanDocument, catalog: Catalog) -> PlanDocument:
    """The document with its models and estimates filled in, or a 422 naming what is wrong."""
    scenes = {s.n for s in doc.scenes}
    if len(scenes) != len(doc.scenes):
        raise invalid("scenes", "scene numbers must be unique")
    kinds = {d.id: d.kind for d in doc.deliverables}
    items = [_check_item(i, d, catalog, scenes, kinds) for i, d in enumerate(doc.deliverables)]
    dependency_order(items)
    return doc.model_copy(update={"deliverables": items})


def total_estimate(doc: PlanDocument, *, skip: Iterable[str] = ()) -> float:
    left_out = set(skip)
    return round(sum(d.estimate_usd for d in doc.deliverables if d.id not in left_out), 6)


def _renumbered(scenes: list[Scene], items: list[Deliverable]) -> tuple[list[Scene], list[Deliverable]]:
    """Scenes numbered 1, 2, … in the order given; each clip's `scene` and each spot's clip order
    follow the move (a scene's `n` as sent names the scene as it was)."""
    sent = [s.n for s in scenes]
    if len(set(sent)) != len(sent):
        raise invalid("scenes", "each scene once: its `n` names it")
    moved = {old: new for new, old in enumerate(sent, start=1)}
    scenes = [s.model_copy(update={"n": moved[s.n]}) for s in scenes]
    items = [
        d.model_copy(update={"scene": moved.get(d.scene, d.scene)}) if d.scene is not None else d
        for d in items
    ]
    order = {d.id: d.scene for d in items if d.role == "clip" and d.scene is not None}
    out = []
    for d in items:
        if d.role == "spot" and any(u in order for u in d.uses):
            clips = sorted((u for u in d.uses if u in order), key=lambda u: order[u])
            d = d.model_copy(update={"uses": clips + [u for u in d.uses if u not in order]})
        out.append(d)
    return scenes, out


def edited(current: PlanDocument, edit: PlanEdit, started: Iterable[str], catalog: Catalog) -> PlanDocument:
    """`current` with `edit` applied and checked. A deliverable that has started (an asset was
    asked for) must come back unchanged: a 409 names it otherwise."""
    known = {d.id: d for d in current.deliverables}
    items = list(edit.deliverables) if edit.deliverables is not None else list(current.deliverables)
    items = [
        d.model_copy(update={k: getattr(known[d.id], k) for k in ("status", "asset", "error")})
        if d.id in known
        else d
        for d in items
    ]
    scenes = list(current.scenes)
    if edit.scenes is not None:
        scenes, items = _renumbered(list(edit.scenes), items)
    try:
        doc = PlanDocument(deliverables=items, scenes=scenes)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "deliverables"
        raise invalid(field, str(err.get("msg", "invalid plan")).removeprefix("Value error, ")) from None
    doc = checked(doc, catalog)
    after = {d.id: d for d in doc.deliverables}
    for item_id in started:
        before = known.get(item_id)
        if before is None:
            continue
        now = after.get(item_id)
        if now is None:
            raise Conflict(f"deliverable {item_id} has started: it cannot be dropped", field="deliverables")
        # A clip's scene number is a label: a reorder renumbers it without changing the clip.
        same = set(EDITABLE) - {"scene"}
        if now.model_dump(include=same) != before.model_dump(include=same):
            raise Conflict(
                f"deliverable {item_id} has started: only deliverables not started yet can be changed",
                field="deliverables",
            )
    return doc


__all__ = [
    "EDITABLE",
    "checked",
    "dependency_order",
    "dump",
    "edited",
    "load",
    "run_options",
    "total_estimate",
]
