"""Request and response shapes for API keys (the API and the web keys page share them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mediagen.auth.service import MAX_EXPIRES_DAYS
from mediagen.auth.tables import ApiKey


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    clients: list[str] | None = Field(default=None, description="Limit the key to these client ids")
    expires_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EXPIRES_DAYS,
        description="The key stops working this many days from now; omit it for a key that never expires",
    )


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    prefix: str
    clients: list[str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = Field(description="When the key stops working; null: never")


class KeyCreated(BaseModel):
    id: str
    name: str
    key: str = Field(description="The secret token; store it now, it cannot be shown again")
    clients: list[str] | None
    created_at: datetime
    expires_at: datetime | None = Field(description="When the key stops working; null: never")

    @classmethod
    def of(cls, row: ApiKey, token: str) -> KeyCreated:
        """The answer to a create: the stored key and, this once, its token."""
        return cls(
            id=row.id,
            name=row.name,
            key=token,
            clients=row.clients,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


class KeyList(BaseModel):
    keys: list[KeyOut]
    count: int
    total: int
