"""Takes: several assets from one request, each with its own seed, grouped so a team can compare
them side by side and pick a winner.

A take group (`tg_…`) is a plain column on each asset, not a table: the takes of a request are
inserted in one transaction with the group already set, and a regenerate joins the original's
group. A single take (n = 1) has no group until it is regenerated, so galleries do not fill up
with groups of one.

Seeds: without an explicit seed every take gets a fresh random one (the synth used to derive the
seed from the prompt, so "regenerate" made the same bytes); with one, take i gets seed + i, so
the same request reproduces the same takes. The seed used is stored on the row and sent to the
engine as the model's `seed` input, for models that have one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.catalog.registry import ModelEntry
from mediagen.db.session import Database
from mediagen.engines.base import EngineError, InputError
from mediagen.errors import NotFound, ProviderRefused, invalid
from mediagen.generations.events import EventType, record_event
from mediagen.generations.pipeline import Pipeline
from mediagen.generations.tables import Generation
from mediagen.vocabulary import ReviewStatus

TAKE_GROUP_PATTERN = r"^tg_[A-Za-z0-9_-]{1,29}$"
# Random seeds stay below 2^31 (what every engine's integer seed accepts) and above 0, which the
# synth reads as "derive the seed from the prompt".
RANDOM_SEED_MAX = 2**31 - 1


def new_group() -> str:
    """An unguessable-enough group id (it is scoped like the assets, not a secret)."""
    return f"tg_{secrets.token_hex(8)}"


def seed_input(entry: ModelEntry) -> str | None:
    """The model's own name for its seed input, or None for a model that takes no seed."""
    name = entry.request_map.get("seed", "seed")
    return name if name in entry.properties else None


def given_seed(entry: ModelEntry, named: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    """Whether the caller chose the seed, as the named `seed` field or under `parameters`."""
    name = seed_input(entry)
    if name is None:
        return False
    asked = {**named, **parameters}
    return any(entry.request_map.get(k, k) == name and v is not None for k, v in asked.items())


def plan_seeds(entry: ModelEntry, given: int | None, n: int) -> list[int | None]:
    """One seed per take: given + i when the caller chose one, else fresh random ones (distinct)."""
    name = seed_input(entry)
    if name is None:
        return [None] * n
    spec = entry.properties[name]
    most = int(spec.get("maximum", RANDOM_SEED_MAX))
    if given is not None:
        if given + n - 1 > most:
            raise invalid(
                "seed", f"{n} takes use seeds {given}–{given + n - 1}; {entry.id} takes at most {most}"
            )
        return [given + i for i in range(n)]
    low = max(1, int(spec.get("minimum", 1)))
    high = min(most, RANDOM_SEED_MAX)
    seeds: list[int | None] = []
    while len(seeds) < n:
        seed = low + secrets.randbelow(high - low + 1)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def request_takes(s: Session, first: Generation) -> list[Generation]:
    """Every take one request made, from its first: the rows of its group inserted with it (the
    same transaction gave them one `created_at`), not the regenerations added to the group later."""
    if first.take_group is None:
        return [first]
    rows = s.scalars(
        select(Generation)
        .where(
            Generation.take_group == first.take_group,
            Generation.created_at == first.created_at,
            Generation.id >= first.id,
        )
        .order_by(Generation.id)
    ).all()
    return list(rows) or [first]


def join_group(s: Session, original_id: int) -> str:
    """The group a regenerate of `original_id` goes into: the original's, or a new one that is set
    on the original too (in the caller's transaction; a concurrent regenerate that set one first
    wins, and both land in the same group)."""
    grouped = s.execute(
        update(Generation)
        .where(Generation.id == original_id, Generation.take_group.is_(None))
        .values(take_group=new_group())
        .execution_options(synchronize_session=False)
    )
    group = s.scalar(select(Generation.take_group).where(Generation.id == original_id))
    if group is None:  # the original was deleted meanwhile
        raise NotFound(f"generation {original_id} not found")
    if getattr(grouped, "rowcount", 0):
        record_event(s, original_id, EventType.UPDATED, {"fields": ["take_group"]})
    return group


def drop_rows(db: Database, ids: list[int]) -> None:
    """Remove rows a request could not start after all; their creation was announced, so their
    end is too."""
    with db.write() as s:
        for gen_id in ids:
            record_event(s, gen_id, EventType.DELETED)
        s.execute(delete(Generation).where(Generation.id.in_(ids)))


def submit_takes(
    pipeline: Pipeline, rows: list[Generation], kind: str, origin: dict[str, str]
) -> list[Generation]:
    """Submit a remote engine's takes in the request itself, so a provider's verdict on the
    inputs reaches the caller as a 422 naming the field, and no row is kept. The takes share
    their inputs, so that verdict comes on the first; a later take the provider turns down
    stays, failed, beside the ones it accepted."""
    for take, row in enumerate(rows):
        try:
            pipeline.submit(row.id, inline=True)
        except InputError as exc:
            if take:
                pipeline.fail(row.id, f"the model rejected an input: {exc}")
                continue
            drop_rows(pipeline.ctx.db, [r.id for r in rows])
            # Strip only a leading "<field>: " (Cog's form): Replicate's descriptions contain ": " too.
            message = str(exc)
            if exc.field and message.startswith(f"{exc.field}: "):
                message = message[len(exc.field) + 2 :]
            field = origin.get(exc.field, f"parameters.{exc.field}") if exc.field else "parameters"
            raise invalid(field, message) from exc
        except EngineError as exc:
            if take:
                continue  # the submit step failed it (or queued another try)
            for later in rows[1:]:
                pipeline.fail(later.id, f"not started: {row.engine} refused take 1 ({exc})")
            raise ProviderRefused(
                f"{row.engine} refused the job: {exc} (generation {row.id} failed)",
                kind=kind,
                generation_id=row.id,
                payment=exc.status_code == 402,
            ) from exc
    with pipeline.ctx.db.read() as s:
        return [s.get(Generation, r.id) or r for r in rows]


@dataclass(frozen=True)
class Takes:
    """What a generate request made: its takes, first to last, and whether they are new (False:
    an Idempotency-Key replay of an earlier request)."""

    rows: list[Generation]
    created: bool

    @property
    def first(self) -> Generation:
        return self.rows[0]

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows]


class ReviewPort(Protocol):
    """Moves an asset's review status and records who did it (the studio's review service)."""

    def set_status(
        self,
        gen_id: int,
        status: ReviewStatus,
        *,
        actor_user: str | None = None,
        actor_name: str | None = None,
        share_id: int | None = None,
    ) -> Any: ...


class TakeService:
    """A take group as its members see it, and picking its winner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def group(self, principal: Principal, take_group: str) -> list[Generation]:
        """The takes the caller may see, in id order; a group with none of them is a 404 (never
        told apart from a group that does not exist)."""
        with self.db.read() as s:
            rows = s.scalars(
                select(Generation).where(Generation.take_group == take_group).order_by(Generation.id)
            ).all()
        visible = [r for r in rows if principal.can_see_client(r.client_id)]
        if not visible:
            raise NotFound(f"take group {take_group} not found")
        return visible

    def pick_winner(
        self, principal: Principal, take_group: str, winner_id: int, review: ReviewPort
    ) -> list[Generation]:
        """The winner approved, every other take rejected (each move recorded as the caller's);
        takes already there are left as they are, so a repeated pick records nothing new."""
        rows = self.group(principal, take_group)
        if winner_id not in {r.id for r in rows}:
            raise invalid("id", f"{winner_id} is not a take of {take_group}")
        for row in rows:
            status = ReviewStatus.APPROVED if row.id == winner_id else ReviewStatus.REJECTED
            if row.review_status != status:
                review.set_status(row.id, status, actor_user=principal.user_id)
        return self.group(principal, take_group)

    def clear_winner(self, principal: Principal, take_group: str, review: ReviewPort) -> list[Generation]:
        """Undo a pick: every take back to `in_review`."""
        for row in self.group(principal, take_group):
            if row.review_status != ReviewStatus.IN_REVIEW:
                review.set_status(row.id, ReviewStatus.IN_REVIEW, actor_user=principal.user_id)
        return self.group(principal, take_group)


def winner_of(rows: list[Generation]) -> int | None:
    """The approved take, when exactly one is."""
    approved = [r.id for r in rows if r.review_status == ReviewStatus.APPROVED]
    return approved[0] if len(approved) == 1 else None
