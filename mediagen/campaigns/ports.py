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
    """Assets of one kind and status under a scope: counts, media seconds, money (the estimate,
    the provider's figures where recorded, and the two coalesced) and performance sums."""

    kind: str
    status: str
    assets: int
    duration_seconds: float
    cost_usd: float
    actual_cost_usd: float = 0.0
    spent_usd: float = 0.0  # per asset: the actual cost where recorded, else the estimate
    views: int = 0
    clicks: int = 0
    conversions: int = 0


class Spend(NamedTuple):
    """A campaign's money as its budget counts it: `spent_usd` over completed assets (actual cost
    where recorded, else the estimate), `committed_usd` the estimate of pending and processing ones."""

    spent_usd: float
    committed_usd: float


class AssetFacts(NamedTuple):
    """What a reference to one asset (a brand's logo) is checked against."""

    kind: str
    status: str
    client_id: str | None


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
        """Counts, seconds, cost and performance per kind and status, for a client's or campaign's stats."""
        ...

    def spend(self, s: Session, campaign_id: str) -> Spend:
        """What the campaign's assets have spent and hold committed (inside the caller's transaction)."""
        ...

    def facts(self, s: Session, asset_id: int) -> AssetFacts | None:
        """The kind, status and client of one asset, or None when there is no such asset."""
        ...
