"""Clients, campaigns and briefs, always seen through a principal's client scope.

A record of a client the principal may not see is reported as *not found*, never as forbidden,
so ids cannot be probed across tenants.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.campaigns.ports import AssetPort, Scope, Tally
from mediagen.campaigns.tables import Brief, Campaign, Client
from mediagen.db.session import Database
from mediagen.errors import Conflict, Forbidden, invalid, not_found
from mediagen.vocabulary import KINDS, Status

T = TypeVar("T", Client, Campaign, Brief)
LOGO_FIELD = "brand.logo_image_id"
# Sums of floats drift in the last places; a request that fits within this much of what is left fits.
BUDGET_SLACK_USD = 1e-9


def usd(amount: float) -> str:
    """Money as a person reads it: cents, or more places when a small amount needs them."""
    text = f"{amount:,.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _client_column(model: type[T]) -> Any:
    if issubclass(model, Client):
        return model.id
    return model.client_id


def _scoped(principal: Principal, model: type[T]) -> list[ColumnElement[bool]]:
    if principal.clients is None:
        return []
    return [_client_column(model).in_(sorted(principal.clients))]


class CampaignService:
    def __init__(self, database: Database, assets: AssetPort) -> None:
        self.db = database
        self.assets = assets

    # generic helpers ----------------------------------------------------------
    def _get(self, s: Session, principal: Principal, model: type[T], ident: str, what: str) -> T:
        row = s.get(model, ident)
        client_id = row.id if isinstance(row, Client) else getattr(row, "client_id", None)
        if row is None or not principal.can_see_client(client_id):
            raise not_found(what, ident)
        return row

    def _list(
        self,
        principal: Principal,
        model: type[T],
        filters: Sequence[ColumnElement[bool]],
        limit: int,
        offset: int,
    ) -> tuple[list[T], int]:
        conds = [*filters, *_scoped(principal, model)]
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(model).where(*conds)) or 0
            rows = s.scalars(
                select(model)
                .where(*conds)
                .order_by(model.created_at.desc(), model.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return list(rows), total

    def _insert(self, s: Session, model: type[T], row: T, what: str) -> T:
        if s.get(model, row.id) is not None:
            raise Conflict(f"{what} id {row.id!r} already exists", field="id")
        s.add(row)
        s.flush()
        return row

    def _visible_client(self, s: Session, principal: Principal, client_id: str, field: str) -> Client:
        client = s.get(Client, client_id)
        if client is None or not principal.can_see_client(client_id):
            raise invalid(field, f"client {client_id!r} not found")
        return client

    def _visible_campaign(self, s: Session, principal: Principal, campaign_id: str, field: str) -> Campaign:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None or not principal.can_see_client(campaign.client_id):
            raise invalid(field, f"campaign {campaign_id!r} not found")
        return campaign

    def _delete_with_assets(
        self, s: Session, row: Client | Campaign, cascade: bool, what: Scope
    ) -> list[str]:
        assets = self.assets.count(s, what, row.id)
        if assets and not cascade:
            raise Conflict(
                f"{what} {row.id!r} still has {assets} generated asset(s); "
                "delete them first or pass ?cascade=true to delete them too",
            )
        released = self.assets.purge(s, what, row.id) if assets else []
        s.delete(row)
        return released

    def _free(self, keys: list[str]) -> None:
        if keys:
            self.assets.free(keys)

    # clients ----------------------------------------------------------------
    def create_client(self, principal: Principal, data: sc.ClientCreate) -> Client:
        if principal.clients is not None:
            raise Forbidden("This key is limited to some clients and cannot create new ones")
        with self.db.write() as s:
            ident = data.id or _new_id("client")
            brand = self._checked_brand(s, principal, ident, data.brand)
            return self._insert(
                s,
                Client,
                Client(id=ident, name=data.name, description=data.description, brand=brand),
                "client",
            )

    def list_clients(
        self, principal: Principal, *, q: str | None, limit: int, offset: int
    ) -> tuple[list[Client], int]:
        filters = [Client.name.ilike(f"%{q}%")] if q else []
        return self._list(principal, Client, filters, limit, offset)

    def get_client(self, principal: Principal, client_id: str) -> Client:
        with self.db.read() as s:
            return self._get(s, principal, Client, client_id, "client")

    def update_client(self, principal: Principal, client_id: str, data: sc.ClientUpdate) -> Client:
        with self.db.write() as s:
            row = self._get(s, principal, Client, client_id, "client")
            for key, value in data.model_dump(exclude_unset=True).items():
                if key == "name" and value is None:
                    raise invalid("name", "must not be null")
                if key == "brand":  # replaced whole (the dump above keeps only what was sent in it)
                    value = self._checked_brand(s, principal, row.id, data.brand)
                setattr(row, key, value)
            s.flush()
            return row

    def _checked_brand(
        self, s: Session, principal: Principal, client_id: str, brand: sc.Brand | None
    ) -> dict[str, Any] | None:
        """The brand as stored, once its logo is known to be a finished image the caller can see,
        of this client or of none (another client's image must not become this one's logo)."""
        if brand is None:
            return None
        logo = brand.logo_image_id
        if logo is not None:
            facts = self.assets.facts(s, logo)
            if facts is None or not principal.can_see_client(facts.client_id):
                raise invalid(LOGO_FIELD, f"image {logo} not found")
            if facts.kind != "image":
                raise invalid(LOGO_FIELD, f"asset {logo} is {facts.kind}, not an image")
            if facts.status != Status.COMPLETED:
                raise invalid(LOGO_FIELD, f"image {logo} is {facts.status}, not completed")
            if facts.client_id not in (None, client_id):
                raise invalid(LOGO_FIELD, f"image {logo} is filed under another client")
        return brand.model_dump(mode="json")

    def delete_client(self, principal: Principal, client_id: str, *, cascade: bool) -> None:
        with self.db.write() as s:
            row = self._get(s, principal, Client, client_id, "client")
            released = self._delete_with_assets(s, row, cascade, "client")
        self._free(released)

    # campaigns --------------------------------------------------------------
    def create_campaign(self, principal: Principal, data: sc.CampaignCreate) -> Campaign:
        with self.db.write() as s:
            self._visible_client(s, principal, data.client_id, "client_id")
            row = Campaign(
                id=data.id or _new_id("campaign"),
                client_id=data.client_id,
                name=data.name,
                goal=data.goal,
                status=data.status,
                budget_usd=data.budget_usd,
            )
            return self._insert(s, Campaign, row, "campaign")

    def list_campaigns(
        self,
        principal: Principal,
        *,
        client_id: str | None,
        status: str | None,
        q: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Campaign], int]:
        filters: list[ColumnElement[bool]] = []
        if client_id:
            filters.append(Campaign.client_id == client_id)
        if status:
            filters.append(Campaign.status == status)
        if q:
            filters.append(Campaign.name.ilike(f"%{q}%"))
        return self._list(principal, Campaign, filters, limit, offset)

    def get_campaign(self, principal: Principal, campaign_id: str) -> Campaign:
        with self.db.read() as s:
            return self._get(s, principal, Campaign, campaign_id, "campaign")

    def update_campaign(self, principal: Principal, campaign_id: str, data: sc.CampaignUpdate) -> Campaign:
        with self.db.write() as s:
            row = self._get(s, principal, Campaign, campaign_id, "campaign")
            for key, value in data.model_dump(exclude_unset=True).items():
                if value is None and key in ("name", "status"):
                    raise invalid(key, "must not be null")
                setattr(row, key, value)
            s.flush()
            return row

    def delete_campaign(self, principal: Principal, campaign_id: str, *, cascade: bool) -> None:
        with self.db.write() as s:
            row = self._get(s, principal, Campaign, campaign_id, "campaign")
            released = self._delete_with_assets(s, row, cascade, "campaign")
        self._free(released)

    # briefs -----------------------------------------------------------------
    def create_brief(self, principal: Principal, data: sc.BriefCreate) -> Brief:
        with self.db.write() as s:
            client_id = data.client_id
            if data.campaign_id:
                campaign = self._visible_campaign(s, principal, data.campaign_id, "campaign_id")
                if client_id and client_id != campaign.client_id:
                    raise invalid(
                        "client_id",
                        f"campaign {campaign.id!r} belongs to client "
                        f"{campaign.client_id!r}, not {client_id!r}",
                    )
                client_id = campaign.client_id
            if not client_id:
                raise invalid("client_id", "field required (or give a campaign_id)")
            self._visible_client(s, principal, client_id, "client_id")
            row = Brief(
                id=data.id or _new_id("brief"),
                client_id=client_id,
                campaign_id=data.campaign_id,
                title=data.title,
                text=data.text,
                direction=data.direction,
                **data.model_dump(include=set(sc.BRIEF_FIELDS)),
            )
            return self._insert(s, Brief, row, "brief")

    def list_briefs(
        self, principal: Principal, *, client_id: str | None, campaign_id: str | None, limit: int, offset: int
    ) -> tuple[list[sc.BriefSummary], int]:
        """Briefs as summaries: the start of the text, never the whole of it or the direction, so a
        page of them stays small whatever was stored (a picker on every gallery page reads this)."""
        conds: list[ColumnElement[bool]] = [*_scoped(principal, Brief)]
        if client_id:
            conds.append(Brief.client_id == client_id)
        if campaign_id:
            conds.append(Brief.campaign_id == campaign_id)
        excerpt = sc.EXCERPT_CHARS
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(Brief).where(*conds)) or 0
            rows = s.execute(
                select(
                    Brief.id,
                    Brief.client_id,
                    Brief.campaign_id,
                    Brief.title,
                    Brief.channels,
                    func.substr(Brief.text, 1, excerpt).label("text"),
                    (func.length(Brief.text) > excerpt).label("text_truncated"),
                    Brief.created_at,
                    Brief.updated_at,
                )
                .where(*conds)
                .order_by(Brief.created_at.desc(), Brief.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [sc.BriefSummary.model_validate(dict(r._mapping)) for r in rows], total

    def get_brief(self, principal: Principal, brief_id: str) -> Brief:
        with self.db.read() as s:
            return self._get(s, principal, Brief, brief_id, "brief")

    def update_brief(self, principal: Principal, brief_id: str, data: sc.BriefUpdate) -> Brief:
        with self.db.write() as s:
            row = self._get(s, principal, Brief, brief_id, "brief")
            changes = data.model_dump(exclude_unset=True)
            if changes.get("campaign_id"):
                campaign = self._visible_campaign(s, principal, changes["campaign_id"], "campaign_id")
                if campaign.client_id != row.client_id:
                    raise invalid("campaign_id", "campaign belongs to another client")
            for key, value in changes.items():
                if value is None and key in ("title", "text", "direction"):
                    raise invalid(key, "must not be null")
                setattr(row, key, value)
            s.flush()
            return row

    def delete_brief(self, principal: Principal, brief_id: str) -> None:
        with self.db.write() as s:
            s.delete(self._get(s, principal, Brief, brief_id, "brief"))

    # lookups for the pipeline -------------------------------------------------
    def resolve_filing(
        self,
        s: Session,
        principal: Principal,
        *,
        client_id: str | None,
        campaign_id: str | None,
        brief_id: str | None,
    ) -> tuple[str | None, str | None, str | None]:
        """Checks a (client, campaign, brief) triple and fills what is implied.

        A campaign implies its client and a brief implies its client and campaign; a mismatch is a
        422 naming the field, and an invisible record reads as not found.
        """
        if brief_id:
            brief = s.get(Brief, brief_id)
            if brief is None or not principal.can_see_client(brief.client_id):
                raise invalid("brief_id", f"brief {brief_id!r} not found")
            if campaign_id and brief.campaign_id and campaign_id != brief.campaign_id:
                raise invalid("brief_id", f"brief {brief_id!r} belongs to campaign {brief.campaign_id!r}")
            campaign_id = campaign_id or brief.campaign_id
            if client_id and client_id != brief.client_id:
                raise invalid("client_id", f"brief {brief_id!r} belongs to client {brief.client_id!r}")
            client_id = brief.client_id
        if campaign_id:
            campaign = self._visible_campaign(s, principal, campaign_id, "campaign_id")
            if client_id and client_id != campaign.client_id:
                raise invalid(
                    "client_id",
                    f"campaign {campaign_id!r} belongs to client {campaign.client_id!r}, not {client_id!r}",
                )
            client_id = campaign.client_id
        if client_id:
            self._visible_client(s, principal, client_id, "client_id")
        elif principal.clients is not None:
            # A limited key must file what it makes under one of its clients, or it could not see it.
            if len(principal.clients) == 1:
                client_id = next(iter(principal.clients))
            else:
                raise invalid("client_id", "required for a key limited to several clients")
        return client_id, campaign_id, brief_id

    # budget ---------------------------------------------------------------
    def check_budget(self, s: Session, campaign_id: str | None, amount_usd: float) -> None:
        """Refuse (409) work that would take the campaign past its budget, inside the caller's
        write transaction so the check and the row it admits commit together. The campaign row is
        locked first (PostgreSQL), so two requests cannot both take the last of a budget."""
        if campaign_id is None or amount_usd <= 0:
            return
        budget = s.scalar(select(Campaign.budget_usd).where(Campaign.id == campaign_id).with_for_update())
        if budget is None:
            return
        spent, committed = self.assets.spend(s, campaign_id)
        remaining = budget - spent - committed
        over = amount_usd - remaining
        if over > BUDGET_SLACK_USD:
            raise Conflict(
                f"Over budget: campaign {campaign_id!r} has {usd(max(remaining, 0.0))} left of its "
                f"{usd(budget)} budget ({usd(spent)} spent, {usd(committed)} committed); this needs "
                f"{usd(amount_usd)}, {usd(over)} more than is left",
                field="campaign_id",
            )

    def budget(self, principal: Principal, campaign_id: str) -> sc.BudgetOut:
        with self.db.read() as s:
            campaign = self._get(s, principal, Campaign, campaign_id, "campaign")
            return self._budget(s, campaign)

    def _budget(self, s: Session, campaign: Campaign) -> sc.BudgetOut:
        spent, committed = self.assets.spend(s, campaign.id)
        budget = campaign.budget_usd
        return sc.BudgetOut(
            budget_usd=budget,
            spent_usd=round(spent, 6),
            committed_usd=round(committed, 6),
            remaining_usd=None if budget is None else round(budget - spent - committed, 6),
        )

    # stats ------------------------------------------------------------------
    def stats(self, principal: Principal, scope: str, ident: str) -> sc.Stats:
        budget: sc.BudgetOut | None = None
        with self.db.read() as s:
            if scope == "client":
                self._get(s, principal, Client, ident, "client")
            else:
                campaign = self._get(s, principal, Campaign, ident, "campaign")
                if campaign.budget_usd is not None:
                    budget = self._budget(s, campaign)
            rows = self.assets.tally(s, "client" if scope == "client" else "campaign", ident)
        return _stats("client" if scope == "client" else "campaign", ident, rows, budget)


def _stats(scope: Scope, ident: str, rows: Sequence[Tally], budget: sc.BudgetOut | None) -> sc.Stats:
    by_kind = {str(k): sc.KindStats() for k in KINDS}
    by_status: dict[str, int] = {}
    views = clicks = conversions = 0
    committed = 0.0
    for row in rows:
        ks = by_kind.setdefault(row.kind, sc.KindStats())
        ks.total += row.assets
        ks.by_status[row.status] = ks.by_status.get(row.status, 0) + row.assets
        ks.cost_usd += row.cost_usd
        ks.actual_cost_usd += row.actual_cost_usd
        if row.status == Status.COMPLETED:
            ks.duration_seconds += row.duration_seconds
            ks.spent_usd += row.spent_usd
        elif row.status in (Status.PENDING, Status.PROCESSING):
            committed += row.cost_usd
        by_status[row.status] = by_status.get(row.status, 0) + row.assets
        views, clicks, conversions = views + row.views, clicks + row.clicks, conversions + row.conversions
    for ks in by_kind.values():
        ks.cost_usd, ks.actual_cost_usd, ks.spent_usd = (
            round(ks.cost_usd, 6),
            round(ks.actual_cost_usd, 6),
            round(ks.spent_usd, 6),
        )
    kinds = by_kind.values()
    return sc.Stats(
        scope="client" if scope == "client" else "campaign",
        id=ident,
        total=sum(k.total for k in kinds),
        by_kind=by_kind,
        by_status=by_status,
        duration_seconds=round(sum(k.duration_seconds for k in kinds), 3),
        cost_usd=round(sum(k.cost_usd for k in kinds), 6),
        actual_cost_usd=round(sum(k.actual_cost_usd for k in kinds), 6),
        spent_usd=round(sum(k.spent_usd for k in kinds), 6),
        committed_usd=round(committed, 6),
        budget=budget,
        performance=sc.Performance(
            views=views,
            clicks=clicks,
            conversions=conversions,
            ctr=round(clicks / views, 6) if views else None,
        ),
    )
