"""Reviewing and organising one asset: title, notes, tags, star, rating, review status (with its
history) and re-filing, each change written with its event in one transaction.

The low-level pieces (`move_status`, `write_tags`, `refiled`) take an open session, so bulk
actions apply them to many assets in one transaction, and share links and the take-winner picker
reach `set_status` after checking their own scope.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.campaigns.service import CampaignService
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import NotFound, invalid, not_found
from mediagen.generations.events import EventType, record_event
from mediagen.generations.tables import AssetTag, Generation
from mediagen.studio.schemas import AssetPatch, normalise_tags
from mediagen.studio.tables import ReviewEvent
from mediagen.vocabulary import ReviewStatus

FILING = ("client_id", "campaign_id", "brief_id")
# What PATCH may change besides the filing and the review status, in the order events list them
# (the last three: campaign performance figures, as the team reports them).
FIELDS = ("title", "notes", "tags", "favorite", "rating", "collection", "views", "clicks", "conversions")


def visible_asset(
    s: Session, principal: Principal, kind: str, gen_id: int, *, lock: bool = False
) -> Generation:
    """The asset if the caller may see it; otherwise the same 404 as for no asset at all. `lock`
    holds the row for the transaction (PostgreSQL), so two edits of one asset queue."""
    row = s.get(Generation, gen_id, with_for_update=lock)
    if row is None or row.kind != kind or not principal.can_see_client(row.client_id):
        raise not_found(kind, gen_id)
    return row


def refiled(row: Generation, given: dict[str, str | None]) -> dict[str, str | None]:
    """The (client, campaign, brief) to resolve when `given` names some of them: a level given
    is taken as given; a level below one that moved is cleared (it belonged to the old place);
    a level above a record given is left for the record to imply; anything else stays."""
    current = {name: getattr(row, name) for name in FILING}
    out: dict[str, str | None] = {}
    for i, name in enumerate(FILING):
        above, below = FILING[:i], FILING[i + 1 :]
        if name in given:
            out[name] = given[name]
        elif any(n in given and given[n] != current[n] for n in above):
            out[name] = None
        elif any(given.get(n) for n in below):
            out[name] = None
        else:
            out[name] = current[name]
    return out


def write_tags(s: Session, row: Generation, tags: list[str]) -> bool:
    """Set an asset's tags on the row (what is shown) and in `asset_tags` (what `tag=` filters
    on), in the caller's transaction; False if they were already these."""
    tags = normalise_tags(tags)
    if tags == list(row.tags or []):
        return False
    row.tags = tags or None
    s.execute(delete(AssetTag).where(AssetTag.generation_id == row.id))
    s.add_all(AssetTag(generation_id=row.id, tag=tag) for tag in tags)
    return True


def move_status(
    s: Session,
    row: Generation,
    status: ReviewStatus,
    *,
    actor_user: str | None,
    actor_name: str | None,
    share_id: int | None,
) -> bool:
    """Move the review status, with its history entry and event, in the caller's transaction;
    a move to where it already stands records nothing (False)."""
    before = row.review_status
    if before == status:
        return False
    row.review_status = str(status)
    s.add(
        ReviewEvent(
            generation_id=row.id,
            from_status=before,
            to_status=str(status),
            actor_user=actor_user,
            actor_name=actor_name,
            share_id=share_id,
            at=utcnow(),
        )
    )
    s.flush()  # the event reads the row as changed
    record_event(s, row.id, EventType.REVIEW, {"review_status": str(status), "from": before})
    return True


def edited(s: Session, row: Generation, changed: list[str]) -> None:
    """One `updated` event naming the fields that changed, if any did."""
    if changed:
        row.updated_at = utcnow()
        s.flush()
        record_event(s, row.id, EventType.UPDATED, {"fields": changed})


class ReviewService:
    def __init__(self, db: Database, campaigns: CampaignService) -> None:
        self.db = db
        self.campaigns = campaigns

    def update(self, principal: Principal, kind: str, gen_id: int, patch: AssetPatch) -> Generation:
        """Apply the fields sent (see AssetPatch) to an asset the caller can see; the changes,
        the tag index, the history entry and the events commit together or not at all."""
        sent = patch.model_fields_set
        with self.db.write() as s:
            # An asset the caller cannot see is a 404 whatever the body says.
            row = visible_asset(s, principal, kind, gen_id, lock=True)
            if not sent:
                raise invalid("body", f"nothing to change; send any of {', '.join(AssetPatch.model_fields)}")
            for name in ("favorite", "review_status"):
                if name in sent and getattr(patch, name) is None:
                    raise invalid(name, "may not be null")
            changed = [
                name for name in FIELDS if name in sent and self._set(s, row, name, getattr(patch, name))
            ]
            given = {name: getattr(patch, name) for name in FILING if name in sent}
            if given:
                filing = self.campaigns.resolve_filing(s, principal, **refiled(row, given))
                for name, value in zip(FILING, filing, strict=True):
                    if getattr(row, name) != value:
                        setattr(row, name, value)
                        changed.append(name)
            edited(s, row, changed)
            if "review_status" in sent:
                move_status(
                    s,
                    row,
                    patch.review_status,
                    actor_user=principal.user_id,
                    actor_name=principal.email,
                    share_id=None,
                )
        return row

    @staticmethod
    def _set(s: Session, row: Generation, name: str, value: Any) -> bool:
        """One plain field; "" clears a text field like null. True if it changed."""
        if name == "tags":
            return write_tags(s, row, value or [])
        if isinstance(value, str) and not value:
            value = None
        if getattr(row, name) == value:
            return False
        setattr(row, name, value)
        return True

    def set_status(
        self,
        gen_id: int,
        status: ReviewStatus,
        *,
        actor_user: str | None = None,
        actor_name: str | None = None,
        share_id: int | None = None,
    ) -> Generation:
        """Move an asset's review status for a caller whose scope was checked elsewhere (a share
        link's reviewer, the take-winner picker): no principal here. A move to where it already
        stands records nothing."""
        try:
            status = ReviewStatus(status)
        except ValueError:
            raise invalid("review_status", f"one of {', '.join(ReviewStatus)}") from None
        with self.db.write() as s:
            row = s.get(Generation, gen_id, with_for_update=True)
            if row is None:
                raise NotFound(f"generation {gen_id} not found")
            move_status(s, row, status, actor_user=actor_user, actor_name=actor_name, share_id=share_id)
        return row

    def history(self, principal: Principal, kind: str, gen_id: int) -> list[ReviewEvent]:
        """Every move of the asset's review status, oldest first."""
        with self.db.read() as s:
            visible_asset(s, principal, kind, gen_id)
            return list(
                s.scalars(
                    select(ReviewEvent)
                    .where(ReviewEvent.generation_id == gen_id)
                    .order_by(ReviewEvent.at, ReviewEvent.id)
                )
            )
