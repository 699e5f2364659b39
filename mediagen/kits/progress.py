"""Where each deliverable of a plan stands, read from the generations made for it.

The generations are the source of truth (a worker, a webhook or a user's cancel moves them), so a
deliverable's status is derived from its rows (`generations.plan_id/plan_item`) every time it is
read; the plan's document keeps a copy for lists and only holds on its own what no row says (a
deliverable whose request was refused before any row existed).

- any row pending or processing → running
- else any row completed → done; its asset is the approved take if one was picked, else the first
  finished one
- else (rows, none completed) → failed, or canceled when the last was canceled
- no rows → planned, or failed when its request was refused (the stored error says why)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mediagen.generations.tables import Generation
from mediagen.kits.plan import AssetRef, Deliverable, PlanDocument
from mediagen.vocabulary import ACTIVE, ReviewStatus, Status

FAILED = frozenset({"failed", "canceled"})


@dataclass(frozen=True)
class Made:
    """A deliverable's generations, summed up."""

    status: str
    ids: tuple[int, ...]
    attempts: int  # requests made for it (the first and every retry)
    asset: AssetRef | None = None
    duration: float | None = None  # the asset's length (a spot's material)
    error: str | None = None
    review_status: str | None = None
    progress: float | None = None


def made_for(s: Session, plan_id: int) -> dict[str, Made]:
    rows = s.execute(
        select(
            Generation.id,
            Generation.plan_item,
            Generation.kind,
            Generation.status,
            Generation.error,
            Generation.review_status,
            Generation.progress,
            Generation.duration,
            Generation.idempotency_key,
        )
        .where(Generation.plan_id == plan_id)
        .order_by(Generation.id)
    ).all()
    by_item: dict[str, list[Any]] = {}
    for row in rows:
        by_item.setdefault(str(row.plan_item), []).append(row)
    return {item: _summed(found) for item, found in by_item.items()}


def _summed(rows: list[Any]) -> Made:
    ids = tuple(r.id for r in rows)
    attempts = max(1, sum(1 for r in rows if r.idempotency_key is not None))
    active = [r for r in rows if r.status in ACTIVE]
    done = [r for r in rows if r.status == Status.COMPLETED]
    if active:
        return Made("running", ids, attempts, progress=active[0].progress)
    if done:
        picked = next((r for r in done if r.review_status == ReviewStatus.APPROVED), done[0])
        return Made(
            "done",
            ids,
            attempts,
            asset=AssetRef(kind=picked.kind, id=picked.id),
            duration=picked.duration,
            review_status=picked.review_status,
        )
    last = rows[-1]
    status = "canceled" if last.status == Status.CANCELED else "failed"
    return Made(status, ids, attempts, error=last.error or status)


def item_state(d: Deliverable, made: Made | None) -> Deliverable:
    """The deliverable with its status, asset and error as they stand."""
    if made is None:
        if d.status == "failed" and d.error:  # refused before any row existed
            return d.model_copy(update={"asset": None})
        return d.model_copy(update={"status": "planned", "asset": None, "error": None})
    return d.model_copy(update={"status": made.status, "asset": made.asset, "error": made.error})


def overlaid(doc: PlanDocument, made: Mapping[str, Made]) -> PlanDocument:
    return doc.model_copy(update={"deliverables": [item_state(d, made.get(d.id)) for d in doc.deliverables]})


def ready(d: Deliverable, states: Mapping[str, Deliverable]) -> bool:
    """Everything it is made from is done."""
    return all(states[u].status == "done" for u in d.uses if u in states)


def settled(doc: PlanDocument, waiting: Iterable[str] = ()) -> tuple[str, str | None]:
    """A running plan's status from its deliverables: done when all are; running while any is,
    or any can still be made (`waiting`: asked to be made again); else failed, saying which."""
    states = {d.id: d for d in doc.deliverables}
    wanted = set(waiting)
    if all(d.status == "done" for d in doc.deliverables):
        return "done", None
    for d in doc.deliverables:
        if d.status == "running":
            return "running", None
        if ready(d, states) and (d.status == "planned" or d.id in wanted):
            return "running", None
    failed = [d for d in doc.deliverables if d.status in FAILED]
    if not failed:  # planned ones wait on nothing that can finish: say so rather than hang
        return "failed", "some deliverables wait on others that cannot be made"
    shown = "; ".join(f"{d.id}: {d.error or d.status}" for d in failed[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    return "failed", f"{len(failed)} deliverable(s) failed — {shown}{more}; retry them alone"


def remaining(doc: PlanDocument) -> float:
    """The estimate of what is not made or being made yet."""
    return round(sum(d.estimate_usd for d in doc.deliverables if d.status not in ("done", "running")), 6)
