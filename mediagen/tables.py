"""Every table of the package, so `Base.metadata` is complete (Alembic, tests).

It lives at the top of the package, not in `db/`, because it imports every feature package and
the database layer sits below them all."""

from mediagen.auth.tables import ApiKey, User
from mediagen.campaigns.tables import Brief, Campaign, Client
from mediagen.catalog.tables import AddedModel
from mediagen.db.base import Base
from mediagen.generations.tables import (
    AssetTag,
    Derivation,
    Duty,
    Event,
    Export,
    ExportItem,
    Generation,
    RateHit,
    Source,
    WebhookDelivery,
    Worker,
)
from mediagen.kits.tables import Plan
from mediagen.storage.tables import Blob, BlobChunk
from mediagen.studio.tables import Comment, ReviewEvent, Share

__all__ = [
    "AddedModel",
    "ApiKey",
    "AssetTag",
    "Base",
    "Blob",
    "BlobChunk",
    "Brief",
    "Campaign",
    "Client",
    "Comment",
    "Derivation",
    "Duty",
    "Event",
    "Export",
    "ExportItem",
    "Generation",
    "Plan",
    "RateHit",
    "ReviewEvent",
    "Share",
    "Source",
    "User",
    "WebhookDelivery",
    "Worker",
]
