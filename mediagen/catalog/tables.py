"""Models added to the catalog from Replicate at run time (the model browser)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from mediagen.db.base import Base, UTCDateTime, utcnow


class AddedModel(Base):
    """One model an admin added by `owner/name`: its catalog entry (the JSON a file in
    `catalog/models/` would hold), kept in the database so every process of a deployment sees it."""

    __tablename__ = "added_models"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # owner/name
    kind: Mapped[str] = mapped_column(String(8))
    version: Mapped[str | None] = mapped_column(String(80), nullable=True)
    entry: Mapped[dict[str, Any]] = mapped_column(JSON)
    added_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
