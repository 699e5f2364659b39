"""Kit plans: drafted from a brief, edited, approved and run as one batch; the kit as one zip; and
images made from a brief's scenes (the seed's route, and the generate route without a prompt)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response
from fastapi.responses import StreamingResponse

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.api.limits import GenId, Limit, Offset, RecordId
from mediagen.auth.service import Principal
from mediagen.errors import InvalidInput
from mediagen.generations.presenters import accepted_json
from mediagen.generations.schemas import GenerateRequest
from mediagen.kits import schemas as ks
from mediagen.kits.schemas import BriefImage, BriefImagesOut, BriefImagesRequest
from mediagen.services import Services
from mediagen.vocabulary import KINDS, Kind

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES, tags=["plans"])

ItemPath = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", description="A deliverable's id in the plan, e.g. d3")
]
VERSION_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "The plan is at another version, or in a state that forbids this",
    },
}
BUDGET: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "override_budget from a caller who is not an admin"},
    409: {
        "model": ErrorOut,
        "description": "Not approved, another version, or the estimate exceeds the campaign's remaining "
        "budget (the message says by how much)",
    },
}


def _located(response: Response, plan: ks.PlanOut) -> ks.PlanOut:
    response.headers["Location"] = plan.url
    return plan


@router.post("/briefs/{brief_id}/plan", status_code=201, response_model=ks.PlanOut)
def create_plan(
    brief_id: RecordId, response: Response, services: ServicesDep, principal: PrincipalDep
) -> ks.PlanOut:
    """Draft a kit plan from the brief and its client's brand: music beds at the lengths needed,
    key visuals per aspect, a clip per scene and a spot per channel and length, each with its
    model, prompt, parameters and estimate. The rule-based planner is offline and deterministic;
    with a Replicate token (`MEDIAGEN_PLANNER`) a language model writes the scenes and prompts,
    falling back to the rules (see `note`) on any error."""
    return _located(response, services.kits.draft(principal, brief_id))


@router.get("/briefs/{brief_id}/plans", response_model=ks.PlanList)
def list_plans(
    brief_id: RecordId, services: ServicesDep, principal: PrincipalDep, limit: Limit = 50, offset: Offset = 0
) -> ks.PlanList:
    """The brief's plans, newest first."""
    return services.kits.list_for_brief(principal, brief_id, limit=limit, offset=offset)


@router.get("/plans/{plan_id}", response_model=ks.PlanOut)
def get_plan(plan_id: GenId, services: ServicesDep, principal: PrincipalDep) -> ks.PlanOut:
    """The plan: its deliverables, each with its status and, once made, its `asset`
    (`{"kind", "id"}`), its scenes, its estimate and the campaign's budget."""
    return services.kits.get(principal, plan_id)


@router.patch("/plans/{plan_id}", response_model=ks.PlanOut, responses=VERSION_CONFLICT)
def edit_plan(
    plan_id: GenId, body: ks.PlanEdit, services: ServicesDep, principal: PrincipalDep
) -> ks.PlanOut:
    """Edit the plan: send the deliverables (change prompts, models, parameters; leave one out to
    drop it, add one with a new id) and the scenes in their new order (a scene's `n` names it as
    it was). The server's own fields may come back as read and are ignored. Every model must be in
    the catalog and make the deliverable's kind. The edit bumps `version` and makes the plan a
    draft again; a deliverable already started cannot be changed or dropped (409)."""
    return services.kits.edit(principal, plan_id, body)


@router.post("/plans/{plan_id}/approve", response_model=ks.PlanOut, responses=VERSION_CONFLICT)
def approve_plan(
    plan_id: GenId,
    services: ServicesDep,
    principal: PrincipalDep,
    body: Annotated[ks.ApproveRequest | None, Body()] = None,
) -> ks.PlanOut:
    """Approve the plan as it is (with `version`: only if it is still the version you read)."""
    return services.kits.approve(principal, plan_id, body or ks.ApproveRequest())


@router.post("/plans/{plan_id}/run", status_code=202, response_model=ks.PlanOut, responses=BUDGET)
def run_plan(
    plan_id: GenId,
    response: Response,
    services: ServicesDep,
    principal: PrincipalDep,
    body: Annotated[ks.RunRequest | None, Body()] = None,
) -> ks.PlanOut:
    """Make every deliverable as one tracked batch: music, visuals and clips first, then each spot
    composed from its clips and music bed and mastered for its channel. Running again makes only
    what is missing and tries failed deliverables again: nothing finished is made twice. Follow
    it with GET /api/plans/{id} or the events stream."""
    return _located(response, services.kits.run(principal, plan_id, body or ks.RunRequest()))


@router.post(
    "/plans/{plan_id}/items/{item_id}/retry",
    status_code=202,
    response_model=ks.PlanOut,
    responses={
        409: {"model": ErrorOut, "description": "The deliverable has not failed, or the plan was edited"}
    },
)
def retry_item(
    plan_id: GenId, item_id: ItemPath, response: Response, services: ServicesDep, principal: PrincipalDep
) -> ks.PlanOut:
    """Make one failed deliverable again (a new attempt), alone; what uses it follows once done."""
    return _located(response, services.kits.retry(principal, plan_id, item_id))


@router.get(
    "/plans/{plan_id}/kit.zip",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "Every finished deliverable: spots in a folder per channel, then music, "
            "visuals and clips; streamed as it is written",
        },
        409: {"model": ErrorOut, "description": "Nothing in the kit is finished yet"},
    },
)
def kit_zip(plan_id: GenId, services: ServicesDep, principal: PrincipalDep) -> StreamingResponse:
    """The kit: every finished deliverable in one zip."""
    name, chunks = services.kits.kit_zip(principal, plan_id)
    return StreamingResponse(
        (c for c in chunks if c),
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"},
    )


# images from a brief's scenes ----------------------------------------------------------------------
def prompts_from_brief(
    services: Services,
    principal: Principal,
    kind: str,
    body: GenerateRequest,
    response: Response,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """A generate request with a brief and no prompt (`POST /api/v2/generate/{kind}`): one image per
    scene of the brief's latest plan; any other kind still needs its prompt."""
    if kind != Kind.IMAGE:
        raise InvalidInput("prompt", "field required: only an image request takes its prompts from a brief")
    made = services.kits.images_from_brief(principal, body, idempotency_key=idempotency_key)
    info = KINDS[Kind.IMAGE]
    response.headers["Location"] = f"/api/{info.path}/{made.rows[0].id}"
    if not made.created:
        response.status_code = 200
    return {**accepted_json(made.rows[0], info, [r.id for r in made.rows]), "plan_id": made.plan_id}


@router.post(
    "/generate-images-from-brief",
    status_code=202,
    response_model=BriefImagesOut,
    tags=["images"],
    responses={
        429: {"model": ErrorOut, "description": "Rate limit (per key, per minute); see Retry-After"},
        502: {"description": "The provider refused the job; the body names the failed generation"},
        503: {"description": "The provider account has no credit, or a dependency is unavailable"},
    },
)
def generate_images_from_brief(
    body: BriefImagesRequest, response: Response, services: ServicesDep, principal: PrincipalDep
) -> BriefImagesOut:
    """The seed's route: one image per scene of the brief's latest kit plan (a plan drafted by the
    rule-based planner, not saved, when the brief has none), filed under the brief. The same as
    POST /api/v2/generate/image with a `brief_id` and no prompt."""
    request = GenerateRequest(brief_id=body.brief_id, model=body.model)
    made = services.kits.images_from_brief(principal, request, idempotency_key=None)
    info = KINDS[Kind.IMAGE]
    response.headers["Location"] = f"/api/{info.path}/{made.rows[0].id}"
    ids = [row.id for row in made.rows]
    return BriefImagesOut(
        ids=ids,
        image_ids=ids,
        images=[
            BriefImage(id=row.id, scene=scene.n, prompt=scene.prompt, url=f"/api/{info.path}/{row.id}")
            for scene, row in made.images
        ],
        brief_id=body.brief_id,
        plan_id=made.plan_id,
    )
