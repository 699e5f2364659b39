"""The kit plan API's request and response shapes.

A plan is read as its document (`kits.plan.PlanDocument`) with each deliverable's progress beside
it, and edited by sending the document back: the fields the server owns (a deliverable's status,
asset, error and estimate; the plan's id, status, dates …) may come back as they were read and are
ignored, so a client can GET, change a prompt and PATCH the same body. Anything else unknown is
refused with a 422 naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediagen.campaigns.schemas import Ref
from mediagen.kits.plan import MAX_DELIVERABLES, MAX_SCENES, Deliverable, Scene

PlanStatus = Literal["draft", "approved", "running", "done", "failed"]

# What a deliverable carries that the server sets: read back, never taken from an edit.
SERVER_ITEM_FIELDS = frozenset(
    {"status", "asset", "error", "estimate_usd", "ids", "review_status", "progress", "url"}
)
# The plan's own fields an edit may carry back unchanged (from GET), ignored.
SERVER_PLAN_FIELDS = frozenset(
    {
        "id",
        "brief_id",
        "client_id",
        "campaign_id",
        "status",
        "planner",
        "note",
        "error",
        "estimate_usd",
        "remaining_usd",
        "budget",
        "created_by",
        "approved_by",
        "approved_at",
        "run_by",
        "run_started_at",
        "finished_at",
        "created_at",
        "updated_at",
        "url",
        "kit_url",
        "zip_url",
    }
)


class DeliverableOut(Deliverable):
    """A deliverable with its progress: `asset` once produced (the approved take if one was
    picked, else the first finished one), every asset made for it (`ids`, retries included)."""

    ids: list[int] = Field(default_factory=list, description="Every asset made for it, oldest first")
    review_status: str | None = Field(default=None, description="The asset's review status")
    progress: float | None = Field(default=None, description="0–1 while a local model runs")


class PlanBudget(BaseModel):
    """The campaign's budget beside the plan's estimate (null fields: the campaign has no budget)."""

    budget_usd: float | None
    spent_usd: float
    committed_usd: float
    remaining_usd: float | None
    needed_usd: float = Field(description="The estimate of what the plan has still to make")
    over_by_usd: float = Field(description="How far `needed_usd` goes past the remaining budget (0: fits)")


class PlanOut(BaseModel):
    id: int
    brief_id: str
    client_id: str
    campaign_id: str | None
    status: PlanStatus = Field(description="draft → approved → running → done | failed")
    planner: Literal["rules", "llm"]
    version: int = Field(description="Bumped by every edit; send it back to approve what you saw")
    note: str | None = Field(description="What the planner said (e.g. why the LLM planner fell back)")
    error: str | None
    estimate_usd: float = Field(description="The catalog's estimate of the whole plan")
    remaining_usd: float = Field(description="The estimate of what is not made yet")
    budget: PlanBudget | None = Field(description="Null when the brief is filed under no campaign")
    deliverables: list[DeliverableOut]
    scenes: list[Scene]
    created_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    run_by: str | None
    run_started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    url: str
    kit_url: str = Field(description="The kit page")
    zip_url: str = Field(description="Every finished deliverable as one zip")


class PlanSummary(BaseModel):
    id: int
    brief_id: str
    status: PlanStatus
    planner: Literal["rules", "llm"]
    version: int
    estimate_usd: float
    deliverables: int
    done: int
    created_at: datetime
    url: str


class PlanList(BaseModel):
    plans: list[PlanSummary]
    count: int
    total: int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class PlanEdit(_Strict):
    """An edited plan: the deliverables (drop one by leaving it out, add one with a new id) and
    the scenes in their new order. A scene's `n` names it as it was; the server numbers the scenes
    1, 2, … in the order sent and follows the move in every clip's `scene` and every spot's clip
    order. Leave `deliverables` or `scenes` out to keep them as they are."""

    version: int | None = Field(
        default=None, ge=1, description="The version you edited; another one is a 409 (no lost edits)"
    )
    deliverables: list[Deliverable] | None = Field(default=None, max_length=MAX_DELIVERABLES)
    scenes: list[Scene] | None = Field(default=None, max_length=MAX_SCENES)

    @model_validator(mode="before")
    @classmethod
    def _drop_server_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in SERVER_PLAN_FIELDS}
            items = data.get("deliverables")
            if isinstance(items, list):
                data["deliverables"] = [
                    {k: v for k, v in d.items() if k not in SERVER_ITEM_FIELDS} if isinstance(d, dict) else d
                    for d in items
                ]
        return data


class ApproveRequest(_Strict):
    version: int | None = Field(
        default=None, ge=1, description="The version you approve; another one is a 409"
    )


class RunRequest(_Strict):
    version: int | None = Field(default=None, ge=1, description="The version you run; another one is a 409")
    override_budget: bool = Field(
        default=False, description="Admins only: run even if the estimate exceeds the campaign's budget"
    )


class BriefImagesRequest(_Strict):
    """The seed's `POST /api/generate-images-from-brief`: one image per scene of the brief's plan."""

    brief_id: Ref
    model: str | None = Field(default=None, max_length=128, description="Image model; default the plan's")


class BriefImage(BaseModel):
    id: int
    scene: int
    prompt: str
    url: str


class BriefImagesOut(BaseModel):
    """The images made, one per scene (`ids` in scene order)."""

    ids: list[int]
    image_ids: list[int] = Field(description="The same ids (the seed's name)")
    images: list[BriefImage]
    brief_id: str
    plan_id: int | None = Field(description="The plan whose scenes were used; null: a rules draft, not saved")
