"""One action on many assets, all or nothing: every item is checked before anything changes, and
the changes (with their history entries and events) commit in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.campaigns.service import CampaignService
from mediagen.db.session import Database
from mediagen.errors import NotFound, invalid
from mediagen.generations.assets import AssetRecords
from mediagen.generations.events import EventType, record_event
from mediagen.generations.tables import Generation
from mediagen.studio.review import FILING, edited, move_status, refiled, write_tags
from mediagen.studio.schemas import MAX_TAGS, BulkAction, BulkItem, BulkRequest
from mediagen.vocabulary import ReviewStatus

REVIEW_MOVES = {
    BulkAction.APPROVE: ReviewStatus.APPROVED,
    BulkAction.REJECT: ReviewStatus.REJECTED,
    BulkAction.IN_REVIEW: ReviewStatus.IN_REVIEW,
    BulkAction.DRAFT: ReviewStatus.DRAFT,
}
MOVE_FIELDS = (*FILING, "collection")


@dataclass(frozen=True)
class BulkResult:
    action: BulkAction
    items: list[BulkItem]  # each asset once, in the order first given


def check_options(req: BulkRequest) -> None:
    """Each option goes with its action only: a tag sent with `move` would otherwise be dropped
    without a word."""
    sent = req.model_fields_set
    tagging = req.action in (BulkAction.TAG, BulkAction.UNTAG)
    if tagging and req.tag is None:
        raise invalid("tag", f"required for {req.action}")
    if not tagging and "tag" in sent:
        raise invalid("tag", "only goes with the tag and untag actions")
    moving = [name for name in MOVE_FIELDS if name in sent]
    if req.action == BulkAction.MOVE and not moving:
        raise invalid("action", "move needs client_id, campaign_id, brief_id or collection")
    if req.action != BulkAction.MOVE and moving:
        raise invalid(moving[0], "only goes with the move action")


class BulkService:
    def __init__(self, db: Database, assets: AssetRecords, campaigns: CampaignService) -> None:
        self.db = db
        self.assets = assets
        self.campaigns = campaigns

    def apply(self, principal: Principal, req: BulkRequest) -> BulkResult:
        """Check every item (a missing or hidden one is a 404 naming `items[i]`), then apply the
        action to all of them in one transaction. Deleted assets' bytes are freed after commit."""
        check_options(req)
        items = list(dict.fromkeys((item.kind, item.id) for item in req.items))
        released: list[str] = []
        with self.db.write() as s:
            rows = self._visible(s, principal, req)
            if req.action == BulkAction.DELETE:
                for row in rows:
                    # Recorded before the DELETE: the event reads the row, and outlives it.
                    record_event(s, row.id, EventType.DELETED)
                released = self.assets.purge_where(s, Generation.id.in_([row.id for row in rows]))
            else:
                for row in rows:
                    self._one(s, principal, req, row)
        self.assets.free(released)
        return BulkResult(req.action, [BulkItem(kind=kind, id=gen_id) for kind, gen_id in items])

    def _visible(self, s: Session, principal: Principal, req: BulkRequest) -> list[Generation]:
        """Every asset named, each once, in order; locked for the transaction (PostgreSQL)."""
        ids = sorted({item.id for item in req.items})
        found = {
            row.id: row
            for row in s.scalars(
                select(Generation).where(Generation.id.in_(ids)).order_by(Generation.id).with_for_update()
            )
        }
        rows: dict[int, Generation] = {}
        for i, item in enumerate(req.items):
            row = found.get(item.id)
            if row is None or row.kind != item.kind or not principal.can_see_client(row.client_id):
                raise NotFound(f"{item.kind} {item.id} not found", field=f"items[{i}]")
            rows.setdefault(row.id, row)
        return list(rows.values())

    def _one(
        self,
        s: Session,
        principal: Principal,
        req: BulkRequest,
        row: Generation,
    ) -> None:
        action = req.action
        if action in REVIEW_MOVES:
            move_status(
                s,
                row,
                REVIEW_MOVES[action],
                actor_user=principal.user_id,
                actor_name=principal.email,
                share_id=None,
            )
            return
        changed: list[str] = []
        if action in (BulkAction.FAVORITE, BulkAction.UNFAVORITE):
            favorite = action == BulkAction.FAVORITE
            if row.favorite != favorite:
                row.favorite = favorite
                changed.append("favorite")
        elif action in (BulkAction.TAG, BulkAction.UNTAG):
            assert req.tag is not None  # check_options
            tags = list(row.tags or [])
            tags = [*tags, req.tag] if action == BulkAction.TAG else [t for t in tags if t != req.tag]
            if len(dict.fromkeys(tags)) > MAX_TAGS:
                where = next(i for i, item in enumerate(req.items) if item.id == row.id)
                raise invalid(f"items[{where}]", f"{row.kind} {row.id} already has {MAX_TAGS} tags")
            if write_tags(s, row, tags):
                changed.append("tags")
        elif action == BulkAction.MOVE:
            changed += self._move(s, principal, req, row)
        edited(s, row, changed)

    def _move(self, s: Session, principal: Principal, req: BulkRequest, row: Generation) -> list[str]:
        sent = req.model_fields_set
        changed: list[str] = []
        given = {name: getattr(req, name) for name in FILING if name in sent}
        if given:
            filing = self.campaigns.resolve_filing(s, principal, **refiled(row, given))
            for name, value in zip(FILING, filing, strict=True):
                if getattr(row, name) != value:
                    setattr(row, name, value)
                    changed.append(name)
        if "collection" in sent:
            collection = req.collection or None
            if row.collection != collection:
                row.collection = collection
                changed.append("collection")
        return changed
