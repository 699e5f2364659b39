"""API shapes for clients, campaigns and briefs (Create / Update / Out / list envelope)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
IdField = Field(default=None, pattern=ID_PATTERN, description="Optional; generated when omitted")
CampaignStatus = Literal["draft", "active", "archived"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ClientCreate(_In):
    id: str | None = IdField
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class ClientUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class CampaignCreate(_In):
    id: str | None = IdField
    client_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    goal: str | None = Field(default=None, max_length=5000)
    status: CampaignStatus = "draft"


class CampaignUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    goal: str | None = Field(default=None, max_length=5000)
    status: CampaignStatus | None = None


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    name: str
    goal: str | None
    status: str
    created_at: datetime
    updated_at: datetime


class BriefCreate(_In):
    id: str | None = IdField
    client_id: str | None = Field(default=None, description="Implied by campaign_id when omitted")
    campaign_id: str | None = None
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(default="", max_length=20000)
    direction: dict[str, Any] = Field(
        default_factory=dict, description="Structured creative direction (mood, tempo, palette, …)"
    )


class BriefUpdate(_In):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    text: str | None = Field(default=None, max_length=20000)
    direction: dict[str, Any] | None = None
    campaign_id: str | None = None


class BriefOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    client_id: str
    campaign_id: str | None
    title: str
    text: str
    direction: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ClientList(BaseModel):
    clients: list[ClientOut]
    count: int
    total: int


class CampaignList(BaseModel):
    campaigns: list[CampaignOut]
    count: int
    total: int


class BriefList(BaseModel):
    briefs: list[BriefOut]
    count: int
    total: int


class KindStats(BaseModel):
    total: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)
    duration_seconds: float = 0.0
    cost_usd: float = 0.0


class Stats(BaseModel):
    scope: Literal["client", "campaign"]
    id: str
    total: int
    by_kind: dict[str, KindStats]
    by_status: dict[str, int]
    duration_seconds: float
    cost_usd: float
