"""The kit plan document: what a planner drafts, the team edits and a run produces.

One schema for every planner (rules and LLM output are both validated against it) and for the
team's edits through the API. Fields marked server-owned are set by the run and ignored on edit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mediagen.campaigns.schemas import Aspect, bounded_json

MAX_DELIVERABLES = 60
MAX_SCENES = 20
MAX_PLAN_PROMPT = 2000
ItemId = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", description="Unique in the plan, e.g. d3")
]
PlanParameters = Annotated[dict[str, Any], AfterValidator(bounded_json(16 * 1024))]
Role = Literal["music", "visual", "clip", "spot"]
ItemStatus = Literal["planned", "running", "done", "failed", "canceled"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class AssetRef(BaseModel):
    kind: Literal["audio", "image", "video"]
    id: int


class Scene(_Strict):
    n: int = Field(ge=1, le=MAX_SCENES)
    purpose: str = Field(min_length=1, max_length=300)
    duration: float = Field(gt=0, le=60, description="Seconds on screen")
    prompt: str = Field(min_length=1, max_length=MAX_PLAN_PROMPT)


class Deliverable(_Strict):
    """One thing the kit delivers.

    roles: `music` a music bed (audio) of `length` seconds; `visual` a key visual (image) at
    `aspect`; `clip` a scene's video clip (`scene` names it); `spot` a composed video for
    `channel` at `length`, made from the deliverables in `uses` (clips in order, then the music bed).
    """

    id: ItemId
    kind: Literal["audio", "image", "video"]
    role: Role
    model: str | None = Field(
        default=None, max_length=128, description="Catalog model id (spots: post/compose)"
    )
    prompt: str = Field(min_length=1, max_length=MAX_PLAN_PROMPT)
    parameters: PlanParameters = Field(default_factory=dict)
    channel: str | None = Field(default=None, max_length=40)
    aspect: Aspect | None = None
    length: float | None = Field(default=None, gt=0, le=600)
    scene: int | None = Field(default=None, ge=1, le=MAX_SCENES)
    uses: list[ItemId] = Field(default_factory=list, max_length=MAX_SCENES + 1)
    takes: int = Field(default=1, ge=1, le=8)
    estimate_usd: float = Field(default=0.0, ge=0)
    # server-owned
    status: ItemStatus = "planned"
    asset: AssetRef | None = None
    error: str | None = None


class PlanDocument(_Strict):
    deliverables: list[Deliverable] = Field(min_length=1, max_length=MAX_DELIVERABLES)
    scenes: list[Scene] = Field(default_factory=list, max_length=MAX_SCENES)

    @model_validator(mode="after")
    def _consistent(self) -> PlanDocument:
        ids = [d.id for d in self.deliverables]
        if len(set(ids)) != len(ids):
            raise ValueError("deliverable ids must be unique")
        known = set(ids)
        for d in self.deliverables:
            missing = [u for u in d.uses if u not in known]
            if missing:
                raise ValueError(f"deliverable {d.id} uses unknown deliverables {missing}")
        return self
