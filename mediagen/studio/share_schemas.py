"""Request and response shapes of review links (`POST /api/shares`, the list, the reviewer's posts).

A target is one of four shapes, `{kind, id}`, `{take_group}`, `{campaign_id}` or `{plan_id}`, read by
one model with a check that exactly one is given: a pydantic union would answer a mistake with one
error per alternative, none of them naming what to send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mediagen.studio.schemas import plain_text
from mediagen.vocabulary import MAX_ID, Kind

DEFAULT_EXPIRES_IN = 7 * 24 * 3600
MIN_EXPIRES_IN = 60
NAME_MAX = 100
TEXT_MAX = 2000

ShareState = Literal["active", "revoked", "expired"]
# What a person types: no control characters (PostgreSQL cannot store a NUL); a line break only in text.
OneLine = Annotated[str, AfterValidator(lambda v: plain_text(v, lines=False))]
Lines = Annotated[str, AfterValidator(lambda v: plain_text(v, lines=True))]


class ShareTarget(BaseModel):
    """What a link opens: one asset, every asset of a take group, a campaign's finished assets, or
    a kit plan's finished deliverables (for the client's sign-off)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: Kind | None = Field(default=None, description="With `id`: one asset")
    id: int | None = Field(default=None, ge=1, le=MAX_ID, description="With `kind`: one asset")
    take_group: OneLine | None = Field(
        default=None, min_length=1, max_length=32, description="Every take of one request (`tg_…`)"
    )
    campaign_id: OneLine | None = Field(
        default=None, min_length=1, max_length=64, description="Every finished asset of a campaign"
    )
    plan_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Every finished deliverable of a kit plan"
    )

    @model_validator(mode="after")
    def _one_shape(self) -> ShareTarget:
        asset = self.kind is not None or self.id is not None
        shapes = sum(
            (asset, self.take_group is not None, self.campaign_id is not None, self.plan_id is not None)
        )
        if shapes != 1 or (asset and (self.kind is None or self.id is None)):
            raise ValueError('give {"kind", "id"}, {"take_group"}, {"campaign_id"} or {"plan_id"}')
        return self

    def public(self) -> dict[str, Any]:
        if self.kind is not None:
            return {"kind": str(self.kind), "id": self.id}
        if self.take_group is not None:
            return {"take_group": self.take_group}
        if self.plan_id is not None:
            return {"plan_id": self.plan_id}
        return {"campaign_id": self.campaign_id}


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    target: ShareTarget
    expires_in: int | None = Field(
        default=None,
        ge=MIN_EXPIRES_IN,
        description="Seconds the link works for: at least 60, at most the server's `share_max_seconds` "
        "(90 days unless configured); 7 days (or that limit, if shorter) when left out",
    )
    label: OneLine | None = Field(
        default=None, max_length=200, description="A name for the link, shown to the team and the reviewer"
    )


class ShareOut(BaseModel):
    """A link as the team sees it; the token is never shown again after creation."""

    id: int
    target: dict[str, Any] = Field(
        description='{"kind", "id"}, {"take_group"}, {"campaign_id"} or {"plan_id"}'
    )
    label: str | None
    state: ShareState = Field(description="active, revoked or expired")
    client_id: str | None
    campaign_id: str | None = Field(description="The campaign the shared thing is filed under, if any")
    created_by: str | None = Field(description="The user id of whoever made it")
    created_by_email: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ShareCreated(ShareOut):
    url: str = Field(description="The absolute review link; the only time its token is shown")


class ShareList(BaseModel):
    shares: list[ShareOut]
    count: int
    total: int


class ReviewerComment(BaseModel):
    """A comment left on a review link (no account: the reviewer names themself)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: OneLine = Field(min_length=1, max_length=NAME_MAX)
    text: Lines = Field(min_length=1, max_length=TEXT_MAX)
    at: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="Seconds into the audio or video"
    )


class ReviewerVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: OneLine = Field(min_length=1, max_length=NAME_MAX)
    status: Literal["approved", "rejected"]
