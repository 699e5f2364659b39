"""Asset records in bulk: counting, tallying and purging what is filed under a client, campaign
or brief, with the blob references they hold. Implements the campaign service's `AssetPort`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ColumnExpressionArgument,
    case,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session

from mediagen.campaigns.ports import AssetFacts, Scope, Spend, Tally
from mediagen.generations.tables import Derivation, Generation
from mediagen.storage.base import BlobInUseError, BlobStore
from mediagen.vocabulary import Status

# What one asset cost: the provider's own figure where it was recorded, else the catalog's estimate.
_SPENT = func.coalesce(Generation.actual_cost_usd, Generation.cost_usd)

_SCOPE_COLUMN = {
    "client": Generation.client_id,
    "campaign": Generation.campaign_id,
    "brief": Generation.brief_id,
}


class AssetRecords:
    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def count(self, s: Session, scope: Scope, ident: str) -> int:
        return (
            s.scalar(select(func.count()).select_from(Generation).where(_SCOPE_COLUMN[scope] == ident)) or 0
        )

    def purge(self, s: Session, scope: Scope, ident: str) -> list[str]:
        return self.purge_where(s, _SCOPE_COLUMN[scope] == ident)

    def purge_where(self, s: Session, condition: ColumnElement[bool]) -> list[str]:
        """Delete matching generations and drop their blob references; returns the keys released.

        Runs inside the caller's transaction; call `free` with the result after it commits.
        """
        rows = s.execute(select(Generation.id, Generation.blob_key).where(condition)).all()
        ids = [r.id for r in rows]
        if not ids:
            return []
        released = [r.blob_key for r in rows if r.blob_key]
        released += list(s.scalars(select(Derivation.blob_key).where(Derivation.generation_id.in_(ids))))
        for key in released:
            self.store.release(s, key)
        s.execute(delete(Derivation).where(Derivation.generation_id.in_(ids)))
        s.execute(delete(Generation).where(Generation.id.in_(ids)))
        return released

    def free(self, keys: Sequence[str]) -> None:
        """Delete the bytes of released blobs that nothing references any more (shared ones stay)."""
        for key in dict.fromkeys(keys):
            try:
                self.store.delete_now(key)
            except BlobInUseError:
                pass

    def tally(self, s: Session, scope: Scope, ident: str) -> list[Tally]:
        def total(column: ColumnExpressionArgument[Any]) -> ColumnElement[Any]:
            return func.coalesce(func.sum(column), 0)

        rows = s.execute(
            select(
                Generation.kind,
                Generation.status,
                func.count(),
                total(Generation.duration),
                total(Generation.cost_usd),
                total(Generation.actual_cost_usd),
                total(_SPENT),
                total(Generation.views),
                total(Generation.clicks),
                total(Generation.conversions),
            )
            .where(_SCOPE_COLUMN[scope] == ident)
            .group_by(Generation.kind, Generation.status)
        ).all()
        return [
            Tally(str(k), str(st), int(n), float(d), float(c), float(a), float(sp), int(v), int(cl), int(cv))
            for k, st, n, d, c, a, sp, v, cl, cv in rows
        ]

    def spend(self, s: Session, campaign_id: str) -> Spend:
        running = (Status.PENDING.value, Status.PROCESSING.value)
        spent, committed = s.execute(
            select(
                func.coalesce(
                    func.sum(case((Generation.status == Status.COMPLETED.value, _SPENT), else_=0)), 0
                ),
                func.coalesce(
                    func.sum(case((Generation.status.in_(running), Generation.cost_usd), else_=0)), 0
                ),
            ).where(Generation.campaign_id == campaign_id)
        ).one()
        return Spend(float(spent), float(committed))

    def facts(self, s: Session, asset_id: int) -> AssetFacts | None:
        # Bound as BIGINT: PostgreSQL's INTEGER id column would refuse a larger number outright,
        # and an id beyond any row is simply no asset.
        wanted = literal(asset_id, BigInteger())
        row = s.execute(
            select(Generation.kind, Generation.status, Generation.client_id).where(Generation.id == wanted)
        ).first()
        return AssetFacts(str(row.kind), str(row.status), row.client_id) if row else None
