"""What the campaign service needs from the asset side, as a port it owns.

Campaigns sit below generations (a generation is filed under a client, campaign and brief), yet
deleting a client with `?cascade=true` must delete its assets and their bytes, and a client's
page shows what was made for it. The generation package implements this protocol
(`generations.assets.AssetRecords`) and the composition root passes it in, so the dependency
points one way and a CampaignService can never be built without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol

from sqlalchemy.orm import Session

Scope = Literal["client", "campaign", "brief"]


class Tally(NamedTuple):
    """Assets of one kind and status under a scope."""

    kind: str
    status: str
    assets: int
    duration_seconds: float
    cost_usd: float


class AssetPort(Protocol):
    def count(self, s: Session, scope: Scope, ident: str) -> int:
        """How many assets are filed under the scope (inside the caller's transaction)."""
        ...

    def purge(self, s: Session, scope: Scope, ident: str) -> list[str]:
        """Delete the scope's assets inside the caller's transaction; returns blob keys released."""
        ...

    def free(self, keys: Sequence[str]) -> None:
        """After the purge committed: delete the bytes nothing references any more."""
        ...

    def tally(self, s: Session, scope: Scope, ident: str) -> list[Tally]:
        """Counts, seconds and cost per kind and status, for a client's or campaign's stats."""
        ...
