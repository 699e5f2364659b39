"""The container every route and task reaches its collaborators through (built in app.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediagen.auth.service import AuthService
    from mediagen.campaigns.service import CampaignService
    from mediagen.catalog.registry import Catalog
    from mediagen.config import Settings
    from mediagen.db.session import Database
    from mediagen.generations.service import GenerationService
    from mediagen.storage.base import BlobStore


@dataclass
class Services:
    settings: Settings
    db: Database
    auth: AuthService
    store: BlobStore
    campaigns: CampaignService
    catalog: Catalog
    generations: GenerationService
    extras: dict[str, Any] = field(default_factory=dict)
