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
from mediagen.campaigns.ports import AssetPort, Scope
from mediagen.campaigns.tables import Brief, Campaign, Client
from mediagen.db.session import Database
from mediagen.errors import Conflict, Forbidden, invalid, not_found
from mediagen.vocabulary import KINDS, Status

T = TypeVar("T", Client, Campaign, Brief)


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
            return self._insert(
                s,
                Client,
                Client(id=data.id or _new_id("client"), name=data.name, description=data.description),
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
                setattr(row, key, value)
            s.flush()
            return row

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

    # stats ------------------------------------------------------------------
    def stats(self, principal: Principal, scope: str, ident: str) -> sc.Stats:
        with self.db.read() as s:
            if scope == "client":
                self._get(s, principal, Client, ident, "client")
            else:
                self._get(s, principal, Campaign, ident, "campaign")
            rows = self.assets.tally(s, "client" if scope == "client" else "campaign", ident)
        by_kind = {str(k): sc.KindStats() for k in KINDS}
        by_status: dict[str, int] = {}
        for kind, status, count, duration, cost in rows:
            ks = by_kind.setdefault(kind, sc.KindStats())
            ks.total += count
            ks.by_status[status] = ks.by_status.get(status, 0) + count
            if status == Status.COMPLETED:
                ks.duration_seconds += float(duration)
            ks.cost_usd += float(cost)
            by_status[status] = by_status.get(status, 0) + count
        return sc.Stats(
            scope="client" if scope == "client" else "campaign",
            id=ident,
            total=sum(k.total for k in by_kind.values()),
            by_kind=by_kind,
            by_status=by_status,
            duration_seconds=round(sum(k.duration_seconds for k in by_kind.values()), 3),
            cost_usd=round(sum(k.cost_usd for k in by_kind.values()), 6),
        )
