"""Imports every table module so `Base.metadata` is complete (Alembic, create_all in tests)."""

from mediagen.auth.tables import ApiKey, User
from mediagen.campaigns.tables import Brief, Campaign, Client
from mediagen.db.base import Base
from mediagen.generations.tables import Derivation, Generation, WebhookDelivery
from mediagen.storage.tables import Blob, BlobChunk

__all__ = [
    "ApiKey",
    "Base",
    "Blob",
    "BlobChunk",
    "Brief",
    "Campaign",
    "Client",
    "Derivation",
    "Generation",
    "User",
    "WebhookDelivery",
]
