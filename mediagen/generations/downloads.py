"""Bulk downloads: many finished assets as one zip, streamed as it is written.

Every item is checked before a byte is sent (a zip cut off halfway by a missing or unfinished item
would look like a network error): one the caller cannot see is a 404 naming `items[i]`, exactly as
for an id that does not exist; one that is not completed is a 409 naming it. The files inside are
named as a single download names them (`filenames.asset_filename`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from mediagen.auth.service import Principal
from mediagen.campaigns.tables import Campaign, Client
from mediagen.db.session import Database
from mediagen.errors import Conflict, NotFound, invalid
from mediagen.generations.filenames import asset_filename, slug
from mediagen.generations.schemas import AssetId
from mediagen.generations.tables import Generation
from mediagen.generations.zipstream import ZipMember, zip_blobs
from mediagen.storage.base import BlobStore
from mediagen.vocabulary import Kind, Status

MAX_ITEMS = 1000


class DownloadItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    id: AssetId


class DownloadRequest(BaseModel):
    """The assets to zip, in the order they go into the zip; one listed twice goes in once."""

    model_config = ConfigDict(extra="forbid")

    items: list[DownloadItem] = Field(min_length=1, max_length=MAX_ITEMS)


def parse_items(raw: str) -> DownloadRequest:
    """`audio:51,image:3` (the GET form) as a request; a malformed item is a 422 naming it."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise invalid("items", "list at least one item, e.g. audio:51,image:3")
    if len(parts) > MAX_ITEMS:
        raise invalid("items", f"at most {MAX_ITEMS} items")
    items = []
    for i, part in enumerate(parts):
        kind, _, ident = part.partition(":")
        if kind not in set(Kind) or not ident.isascii() or not ident.isdigit() or not 1 <= int(ident) < 2**63:
            raise invalid(f"items[{i}]", f"{part!r} is not kind:id (kind one of {', '.join(Kind)})")
        items.append(DownloadItem(kind=Kind(kind), id=int(ident)))
    return DownloadRequest(items=items)


class DownloadService:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db, self.store = db, store

    def resolve(self, principal: Principal, items: Sequence[DownloadItem]) -> list[Generation]:
        """The items' rows in the order asked, each once; raises for the first that cannot go."""
        with self.db.read() as s:
            found = {
                r.id: r for r in s.scalars(select(Generation).where(Generation.id.in_({i.id for i in items})))
            }
        rows: dict[int, Generation] = {}
        for index, item in enumerate(items):
            row = found.get(item.id)
            where = f"items[{index}]"
            if row is None or row.kind != item.kind or not principal.can_see_client(row.client_id):
                # No id in the message: the same words for an asset of another client as for none.
                raise NotFound(f"no {item.kind} with this id (or not one you can see)", field=where)
            if row.status != Status.COMPLETED or not row.blob_key:
                raise Conflict(
                    f"{item.kind} {item.id} is {row.status}; only completed assets can be downloaded",
                    field=where,
                )
            rows.setdefault(row.id, row)
        return list(rows.values())

    def filename(self, row: Generation) -> str:
        """The row's download name: `<campaign>-<prompt slug>-<id>.<ext>`."""
        campaigns, clients = self._names([row])
        return _filename(row, campaigns, clients)

    def zip_stream(self, principal: Principal, items: Sequence[DownloadItem]) -> tuple[str, Iterator[bytes]]:
        """(the zip's file name, its bytes as they are written). Everything is checked first."""
        rows = self.resolve(principal, items)
        campaigns, clients = self._names(rows)
        members = [
            ZipMember(
                _filename(r, campaigns, clients),
                r.blob_key or "",
                r.size_bytes or 0,
                r.completed_at or r.created_at,
            )
            for r in rows
        ]
        where = {campaigns.get(r.campaign_id or "") or clients.get(r.client_id or "") for r in rows}
        prefix = slug(where.pop()) if len(where) == 1 else ""
        return f"{prefix or 'mediagen'}-{len(rows)}-files.zip", zip_blobs(self.store, members)

    def _names(self, rows: Sequence[Generation]) -> tuple[dict[str, str], dict[str, str]]:
        """The campaigns' and clients' names the rows are filed under."""
        campaign_ids = {r.campaign_id for r in rows if r.campaign_id}
        client_ids = {r.client_id for r in rows if r.client_id}
        campaigns: dict[str, str] = {}
        clients: dict[str, str] = {}
        with self.db.read() as s:
            if campaign_ids:
                stmt = select(Campaign.id, Campaign.name).where(Campaign.id.in_(campaign_ids))
                campaigns = dict(s.execute(stmt).all())
            if client_ids:
                stmt = select(Client.id, Client.name).where(Client.id.in_(client_ids))
                clients = dict(s.execute(stmt).all())
        return campaigns, clients


def _filename(row: Generation, campaigns: dict[str, str], clients: dict[str, str]) -> str:
    return asset_filename(
        row.id,
        row.kind,
        row.prompt,
        row.content_type,
        campaign=campaigns.get(row.campaign_id or ""),
        client=clients.get(row.client_id or ""),
    )
