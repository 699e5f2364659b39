"""Take groups: the takes one generate request made (plus their regenerations), listed together,
and the winner picked (approved, the others rejected) or the pick undone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.generations.presenters import asset_json
from mediagen.generations.schemas import GenerationOut
from mediagen.generations.tables import Generation
from mediagen.generations.takes import TAKE_GROUP_PATTERN, winner_of
from mediagen.services import Services
from mediagen.vocabulary import KINDS, MAX_ID, Kind

router = APIRouter(prefix="/api/takes", tags=["takes"], responses=ERROR_RESPONSES)

TakeGroup = Annotated[
    str, Path(min_length=4, max_length=32, pattern=TAKE_GROUP_PATTERN, description="The group, `tg_…`")
]
GROUP_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such group, or none of its takes is yours"},
}


class TakeGroupOut(BaseModel):
    take_group: str
    winner: int | None = Field(description="The approved take, when exactly one is")
    items: list[GenerationOut] = Field(description="The takes, in id order (the order they were made)")


class WinnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=1, le=MAX_ID, description="The take that wins")


def _group_json(services: Services, take_group: str, rows: list[Generation]) -> JSONResponse:
    names = services.generations.derivation_names([r.id for r in rows])
    return JSONResponse(
        {
            "take_group": take_group,
            "winner": winner_of(rows),
            "items": [asset_json(r, KINDS[Kind(r.kind)], names.get(r.id)) for r in rows],
        }
    )


@router.get("/{take_group}", response_class=JSONResponse, responses={200: {"model": TakeGroupOut}})
def get_take_group(take_group: TakeGroup, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    """Every take of a group the caller can see, in the order they were made: the takes of one
    generate request (`n` > 1) and the regenerations of any of them."""
    return _group_json(services, take_group, services.takes.group(principal, take_group))


@router.post(
    "/{take_group}/winner",
    response_class=JSONResponse,
    responses={
        200: {"model": TakeGroupOut, "description": "The group after the pick"},
        **GROUP_MISSING,
        422: {"model": ErrorOut, "description": "`id` is not a take of this group (`errors` names `id`)"},
    },
)
def pick_winner(
    take_group: TakeGroup, body: WinnerIn, services: ServicesDep, principal: PrincipalDep
) -> JSONResponse:
    """Pick the winner: it becomes `approved` and every other take `rejected`, each recorded in
    the review history as the caller's. Picking again moves the approval; DELETE undoes it."""
    rows = services.takes.pick_winner(principal, take_group, body.id, services.review)
    return _group_json(services, take_group, rows)


@router.delete(
    "/{take_group}/winner",
    response_class=JSONResponse,
    responses={
        200: {"model": TakeGroupOut, "description": "The group, every take back in review"},
        **GROUP_MISSING,
    },
)
def clear_winner(take_group: TakeGroup, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    """Undo a pick: every take of the group goes back to `in_review` (recorded as the caller's)."""
    rows = services.takes.clear_winner(principal, take_group, services.review)
    return _group_json(services, take_group, rows)
