"""Asset records in bulk: counting, tallying and purging what is filed under a client, campaign
or brief, with the blob references they hold. Implements the campaign service's `AssetPort`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from mediagen.campaigns.ports import Scope, Tally
from mediagen.generations.tables import Derivation, Generation
from mediagen.storage.base import BlobInUseError, BlobStore

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
        rows = s.execute(
            select(
                Generation.kind,
                Generation.status,
                func.count(),
                func.coalesce(func.sum(Generation.duration), 0.0),
                func.coalesce(func.sum(Generation.cost_usd), 0.0),
            )
            .where(_SCOPE_COLUMN[scope] == ident)
            .group_by(Generation.kind, Generation.status)
        ).all()
        return [Tally(str(k), str(st), int(n), float(d or 0.0), float(c or 0.0)) for k, st, n, d, c in rows]
