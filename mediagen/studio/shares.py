"""Review links: expiring, revocable URLs that open one asset, a take group, a campaign or a kit
plan's deliverables to someone without an account.

The token is the only credential, so:
* it is 32 random bytes (`secrets.token_urlsafe`), and only its sha256 is stored: a copy of the
  database opens nothing;
* it is looked up on every request, never cached, so a revoked or expired link stops at once;
* everything reached through it is checked against what was shared *and* the tenant it was shared
  from (`_scope`): guessing another asset's id, kind or route finds nothing, and re-filing an asset
  under another client takes it out of every link made before.

The team side (create, list, revoke) sees links through the caller's client scope like any record.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, func, not_, select
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal, hash_token
from mediagen.auth.tables import User
from mediagen.campaigns.service import CampaignService
from mediagen.campaigns.tables import Campaign
from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import NotFound, RateLimited, invalid, not_found
from mediagen.generations.presenters import iso
from mediagen.generations.ratelimit import RateLimiter
from mediagen.generations.tables import Derivation, Generation
from mediagen.studio.comments import checked_at
from mediagen.studio.share_schemas import (
    DEFAULT_EXPIRES_IN,
    ReviewerComment,
    ReviewerVerdict,
    ShareCreate,
    ShareCreated,
    ShareOut,
    ShareState,
)
from mediagen.studio.tables import Share
from mediagen.vocabulary import Kind, Status

PAGE_CAP = 200  # assets one review page shows; a campaign may hold more (the page says so)
REVIEWER_POSTS_PER_MINUTE = 30  # comments and verdicts per link
ASSET, TAKE_GROUP, CAMPAIGN, PLAN = "asset", "take_group", "campaign", "plan"


class ShareGone(NotFound):
    """A link that existed but no longer works: revoked or expired. A `NotFound`, so any edge that
    does not know it answers 404 (never more); the review pages and their routes answer 410."""

    def __init__(self, reason: Literal["revoked", "expired"], when: datetime) -> None:
        super().__init__(f"This review link {'was revoked' if reason == 'revoked' else 'has expired'}")
        self.reason = reason
        self.when = when


@dataclass(frozen=True)
class Verdict:
    """A reviewer's approve/reject, checked and ready to record."""

    share: Share
    row: Generation
    name: str
    status: str


@dataclass(frozen=True)
class Remark:
    """A reviewer's comment, checked (length, `at` within the asset) and ready to record."""

    share: Share
    row: Generation
    name: str
    text: str
    at: float | None


def state_of(share: Share, now: datetime | None = None) -> ShareState:
    if share.revoked_at is not None:
        return "revoked"
    return "expired" if share.expires_at <= (now or utcnow()) else "active"


def target_of(share: Share) -> dict[str, Any]:
    if share.target == ASSET:
        return {"kind": share.asset_kind, "id": share.asset_id}
    if share.target == TAKE_GROUP:
        return {"take_group": share.take_group}
    if share.target == PLAN:
        return {"plan_id": share.asset_id}  # a plan link keeps the plan's id where an asset's goes
    return {"campaign_id": share.campaign_id}


def _same_client(client_id: str | None) -> ColumnElement[bool]:
    return Generation.client_id.is_(None) if client_id is None else Generation.client_id == client_id


def _scope(share: Share) -> list[ColumnElement[bool]]:
    """What a link reaches: exactly its target, and only while it is filed under the same client."""
    where = [_same_client(share.client_id)]
    if share.target == ASSET:
        where += [Generation.id == share.asset_id, Generation.kind == share.asset_kind]
    elif share.target == TAKE_GROUP:
        where.append(Generation.take_group == share.take_group)
    elif share.target == CAMPAIGN:
        where += [Generation.campaign_id == share.campaign_id, Generation.status == Status.COMPLETED]
    elif share.target == PLAN and share.asset_id is not None:
        where += [Generation.plan_id == share.asset_id, Generation.status == Status.COMPLETED]
    else:  # an unknown target reaches nothing
        where.append(Generation.id.is_(None))
    return where


def _active(now: datetime) -> ColumnElement[bool]:
    return and_(Share.revoked_at.is_(None), Share.expires_at > now)


class ShareService:
    def __init__(
        self, database: Database, settings: Settings, campaigns: CampaignService, limiter: RateLimiter
    ) -> None:
        self.db = database
        self.settings = settings
        self.campaigns = campaigns
        self.limiter = limiter

    # the team's side ----------------------------------------------------------------------------
    def create(self, principal: Principal, body: ShareCreate, *, base_url: str) -> ShareCreated:
        """A new link to something the caller can see. `base_url` is the request's own; the link is
        built on `public_url` when it is set (behind a proxy the request's host may be internal)."""
        most = self.settings.share_max_seconds
        lifetime = body.expires_in if body.expires_in is not None else min(DEFAULT_EXPIRES_IN, most)
        if lifetime > most:
            raise invalid("expires_in", f"at most {most} seconds ({most / 86400:g} days) on this server")
        target = body.target
        token = secrets.token_urlsafe(32)
        now = utcnow()
        share = Share(
            token_hash=hash_token(token),
            label=body.label or None,
            created_by=principal.user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        )
        if target.campaign_id is not None:
            try:
                campaign = self.campaigns.get_campaign(principal, target.campaign_id)
            except NotFound:
                raise NotFound(f"campaign {target.campaign_id!r} not found", field="target") from None
            share.target, share.campaign_id, share.client_id = CAMPAIGN, campaign.id, campaign.client_id
        with self.db.write() as s:
            if target.kind is not None and target.id is not None:
                row = s.get(Generation, target.id)
                if row is None or row.kind != target.kind or not principal.can_see_client(row.client_id):
                    raise NotFound(f"{target.kind} {target.id} not found", field="target")
                share.target, share.asset_kind, share.asset_id = ASSET, row.kind, row.id
                share.client_id, share.campaign_id = row.client_id, row.campaign_id
            elif target.take_group is not None:
                share.target, share.take_group = TAKE_GROUP, target.take_group
                share.client_id, share.campaign_id = self._take_group_filing(s, principal, target.take_group)
            elif target.plan_id is not None:
                share.target, share.asset_id = PLAN, target.plan_id
                share.client_id, share.campaign_id = self._plan_filing(s, principal, target.plan_id)
            s.add(share)
            s.flush()
            out = self._out(s, [share])[0]
        url = f"{(self.settings.public_url or base_url).rstrip('/')}/s/{token}"
        return ShareCreated(**out.model_dump(), url=url)

    @staticmethod
    def _take_group_filing(
        s: Session, principal: Principal, take_group: str
    ) -> tuple[str | None, str | None]:
        """The client and campaign of a take group's assets the caller can see (404 naming `target`
        when there is none: a group of another tenant's takes is no group at all)."""
        rows = s.execute(
            select(Generation.client_id, Generation.campaign_id)
            .where(Generation.take_group == take_group)
            .order_by(Generation.id)
        ).all()
        visible = [(client, campaign) for client, campaign in rows if principal.can_see_client(client)]
        if not visible:
            raise NotFound(f"take group {take_group!r} not found", field="target")
        client_id, campaign_id = visible[0]
        same_campaign = all(c == campaign_id for _, c in visible)
        return client_id, campaign_id if same_campaign else None

    @staticmethod
    def _plan_filing(s: Session, principal: Principal, plan_id: int) -> tuple[str | None, str | None]:
        """The client and campaign of a kit plan, from what its run made (a plan is filed under its
        brief's client and campaign, and so is everything it makes): 404 naming `target` when the
        caller can see nothing made for it, whether the plan is another tenant's or not run yet."""
        found = s.execute(
            select(Generation.client_id, Generation.campaign_id)
            .where(Generation.plan_id == plan_id)
            .order_by(Generation.id)
            .limit(1)
        ).first()
        if found is None or not principal.can_see_client(found[0]):
            raise NotFound(f"plan {plan_id} not found, or nothing of it made yet", field="target")
        return found[0], found[1]

    def list_visible(
        self,
        principal: Principal,
        *,
        campaign_id: str | None = None,
        kind: Kind | None = None,
        asset_id: int | None = None,
        take_group: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ShareOut], int]:
        """Links the caller can see, newest first. `campaign_id` lists every link filed under the
        campaign (its own, its assets', its take groups'); `kind` with `asset_id` one asset's."""
        if (kind is None) != (asset_id is None):
            raise invalid("kind" if kind is None else "id", "give kind and id together")
        where: list[ColumnElement[bool]] = []
        if principal.clients is not None:
            where.append(Share.client_id.in_(sorted(principal.clients)))
        if campaign_id:
            where.append(Share.campaign_id == campaign_id)
        if kind is not None:
            where += [Share.target == ASSET, Share.asset_kind == str(kind), Share.asset_id == asset_id]
        if take_group:
            where += [Share.target == TAKE_GROUP, Share.take_group == take_group]
        if active is not None:
            now = utcnow()
            where.append(_active(now) if active else not_(_active(now)))
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(Share).where(*where)) or 0
            rows = s.scalars(
                select(Share)
                .where(*where)
                .order_by(Share.created_at.desc(), Share.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            return self._out(s, list(rows)), total

    def revoke(self, principal: Principal, share_id: int) -> None:
        """Stops the link at once (idempotent); another tenant's link, or none, is a 404."""
        with self.db.write() as s:
            share = s.get(Share, share_id)
            if share is None or not principal.can_see_client(share.client_id):
                raise not_found("share", share_id)
            if share.revoked_at is None:
                share.revoked_at = utcnow()

    @staticmethod
    def _out(s: Session, shares: Sequence[Share]) -> list[ShareOut]:
        makers = {sh.created_by for sh in shares if sh.created_by}
        emails = (
            dict(s.execute(select(User.id, User.email).where(User.id.in_(sorted(makers)))).all())
            if makers
            else {}
        )
        now = utcnow()
        return [
            ShareOut(
                id=sh.id,
                target=target_of(sh),
                label=sh.label,
                state=state_of(sh, now),
                client_id=sh.client_id,
                campaign_id=sh.campaign_id,
                created_by=sh.created_by,
                created_by_email=emails.get(sh.created_by or ""),
                created_at=sh.created_at,
                expires_at=sh.expires_at,
                revoked_at=sh.revoked_at,
            )
            for sh in shares
        ]

    # the reviewer's side ------------------------------------------------------------------------
    def open(self, token: str) -> Share:
        """The link a token names, checked now: unknown → NotFound, revoked or expired → ShareGone."""
        if not token or len(token) > 128:
            raise NotFound("There is no review link at this address")
        with self.db.read() as s:
            share = s.scalar(select(Share).where(Share.token_hash == hash_token(token)))
        if share is None:
            raise NotFound("There is no review link at this address")
        state = state_of(share)
        if state == "revoked":
            assert share.revoked_at is not None
            raise ShareGone("revoked", share.revoked_at)
        if state == "expired":
            raise ShareGone("expired", share.expires_at)
        return share

    def assets(self, share: Share, *, limit: int = PAGE_CAP) -> tuple[list[Generation], int]:
        """What the link shows: at most `limit` assets (a campaign's newest first, takes in the order
        they were made), and how many there are in all."""
        where = _scope(share)
        order = (
            (Generation.id.asc(),)
            if share.target != CAMPAIGN
            else (Generation.created_at.desc(), Generation.id.desc())
        )
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(Generation).where(*where)) or 0
            rows = s.scalars(select(Generation).where(*where).order_by(*order).limit(limit)).all()
        return list(rows), total

    def campaign_name(self, share: Share) -> str | None:
        """The shared campaign's name, for the page's heading (the reviewer sees no ids)."""
        if share.campaign_id is None:
            return None
        with self.db.read() as s:
            campaign = s.get(Campaign, share.campaign_id)
        return campaign.name if campaign is not None and campaign.client_id == share.client_id else None

    def asset(self, share: Share, kind: str, gen_id: int) -> Generation:
        """One asset the link reaches; anything else (another id, kind or tenant) reads as absent."""
        with self.db.read() as s:
            row = s.scalar(
                select(Generation).where(Generation.id == gen_id, Generation.kind == kind, *_scope(share))
            )
        if row is None:
            raise NotFound("Nothing at this address in this review link")
        return row

    def derivation(self, share: Share, kind: str, gen_id: int, name: str) -> Derivation:
        row = self.asset(share, kind, gen_id)
        with self.db.read() as s:
            found = s.get(Derivation, (row.id, name))
        if found is None:
            raise NotFound(f"This {kind} has no {name}")
        return found

    def derivation_names(self, ids: Sequence[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {i: set() for i in ids}
        if not ids:
            return out
        with self.db.read() as s:
            for gen_id, name in s.execute(
                select(Derivation.generation_id, Derivation.name).where(
                    Derivation.generation_id.in_(list(ids))
                )
            ):
                out[gen_id].add(name)
        return out

    def remark(self, token: str, kind: str, gen_id: int, body: ReviewerComment) -> Remark:
        """A comment the link may leave on this asset: in scope, within the rate, `at` on its timeline."""
        share, row = self._reviewable(token, kind, gen_id)
        at = checked_at(row, body.at)  # the comment service's own rule, before anything is written
        return Remark(share, row, body.name, body.text, at)

    def verdict(self, token: str, kind: str, gen_id: int, body: ReviewerVerdict) -> Verdict:
        share, row = self._reviewable(token, kind, gen_id)
        return Verdict(share, row, body.name, body.status)

    def _reviewable(self, token: str, kind: str, gen_id: int) -> tuple[Share, Generation]:
        share = self.open(token)
        row = self.asset(share, kind, gen_id)
        try:
            self.limiter.check(f"share:{share.id}")
        except RateLimited as exc:
            raise RateLimited(
                f"Too many comments and verdicts on this review link: at most {self.limiter.per_minute} "
                f"a minute; try again in {exc.retry_after} s",
                retry_after=exc.retry_after,
            ) from None
        return share, row


def comment_json(comment: Any) -> dict[str, Any]:
    """A comment as the review page shows it, from a `Comment` row or its JSON shape."""

    def get(name: str) -> Any:
        return comment.get(name) if isinstance(comment, Mapping) else getattr(comment, name, None)

    at = get("at_seconds")
    created = get("created_at")
    return {
        "id": get("id"),
        "at": get("at") if at is None else at,
        "text": get("text"),
        "author_name": get("author_name") or get("author"),
        "created_at": iso(created) if isinstance(created, datetime) else created,
    }


def reviewer_limiter() -> RateLimiter:
    return RateLimiter(REVIEWER_POSTS_PER_MINUTE)


__all__ = [
    "PAGE_CAP",
    "Remark",
    "ShareGone",
    "ShareService",
    "Verdict",
    "comment_json",
    "reviewer_limiter",
    "state_of",
    "target_of",
]
