"""Review and organise: edit an asset (title, notes, tags, star, rating, review status, filing),
its review history, time-coded comments, and one action on many assets at once.

The per-asset routes are spelled out per kind beside the generation routes (`/api/audio/{id}`…),
so OpenAPI lists them under each kind.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Path, Response
from fastapi.responses import JSONResponse

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.api.limits import GenId
from mediagen.generations.presenters import asset_json, iso
from mediagen.generations.schemas import GenerationOut
from mediagen.services import Services
from mediagen.studio.schemas import (
    AssetPatch,
    BulkOut,
    BulkRequest,
    CommentCreate,
    CommentOut,
    CommentsOut,
    HistoryOut,
)
from mediagen.studio.tables import Comment, ReviewEvent
from mediagen.vocabulary import KINDS, MAX_ID, KindInfo

router = APIRouter(responses=ERROR_RESPONSES)
_T = TypeVar("_T")

# A body FastAPI does not require, so a bad id in the path is reported as such (422 naming it)
# rather than hidden behind "a JSON body is required"; the service then says what is missing.
OptionalBody = Annotated[_T | None, Body()]
CommentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The comment's id")]


def item_json(services: Services, principal: Any, row: Any, info: KindInfo) -> dict[str, Any]:
    """The asset as GET /api/{kind}/{id} shows it."""
    lineage = services.generations.lineage(principal, row.id)
    return asset_json(row, info, services.generations.derivations(row.id), lineage)


def history_json(entry: ReviewEvent) -> dict[str, Any]:
    return {
        "from": entry.from_status,
        "to": entry.to_status,
        "actor_user": entry.actor_user,
        "actor_name": entry.actor_name,
        "share_id": entry.share_id,
        "at": iso(entry.at),
    }


def comment_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "at": comment.at_seconds,
        "text": comment.text,
        "author_name": comment.author_name,
        "author_user": comment.author_user,
        "share_id": comment.share_id,
        "created_at": iso(comment.created_at),
    }


def _register(info: KindInfo) -> None:
    kind, one = info.kind, f"/api/{info.path}/{{gen_id}}"
    tags: list[str | Enum] = [info.label.lower()]

    def update_item(
        gen_id: GenId, services: ServicesDep, principal: PrincipalDep, body: OptionalBody[AssetPatch] = None
    ) -> JSONResponse:
        row = services.review.update(principal, kind, gen_id, body or AssetPatch())
        return JSONResponse(item_json(services, principal, row, info))

    router.add_api_route(
        one,
        update_item,
        methods=["PATCH"],
        name=f"update_{kind}",
        tags=tags,
        summary=f"Edit a {kind} item",
        description=f"Change any of title, notes, tags, favorite, rating, review_status and the "
        f"filing (client_id, campaign_id, brief_id, collection) of a {kind} item; fields left out "
        "stay as they are, and an empty body is a 422. A new filing must be one you can see (422 "
        "naming the field otherwise). Each review status move is kept in the history. Answers "
        "the item as GET shows it.",
        response_class=JSONResponse,
        responses={200: {"model": GenerationOut}},
    )

    def history(gen_id: GenId, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
        entries = services.review.history(principal, kind, gen_id)
        return {"history": [history_json(e) for e in entries], "count": len(entries)}

    router.add_api_route(
        f"{one}/history",
        history,
        methods=["GET"],
        name=f"history_{kind}",
        tags=tags,
        summary=f"Review history of a {kind} item",
        description="Every move of its review status, oldest first: from, to, who (a user, or the "
        "name a share-link reviewer gave) and when.",
        response_model=HistoryOut,
        response_model_by_alias=True,
    )

    def list_comments(gen_id: GenId, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
        comments = services.comments.list(principal, kind, gen_id)
        return {"comments": [comment_json(c) for c in comments], "count": len(comments)}

    router.add_api_route(
        f"{one}/comments",
        list_comments,
        methods=["GET"],
        name=f"comments_{kind}",
        tags=tags,
        summary=f"Comments on a {kind} item",
        description="Oldest first; `at` is seconds into the audio or video (null: on the whole).",
        response_model=CommentsOut,
    )

    def add_comment(
        gen_id: GenId,
        services: ServicesDep,
        principal: PrincipalDep,
        body: OptionalBody[CommentCreate] = None,
    ) -> JSONResponse:
        at, text = (body.at, body.text) if body is not None else (None, "")
        comment = services.comments.add(principal, kind, gen_id, at=at, text=text)
        return JSONResponse(comment_json(comment), status_code=201)

    router.add_api_route(
        f"{one}/comments",
        add_comment,
        methods=["POST"],
        name=f"comment_{kind}",
        tags=tags,
        status_code=201,
        summary=f"Comment on a {kind} item",
        description="`text` (1–2000 characters), and for audio and video optionally `at`: seconds "
        "from 0 to the item's duration (a 422 naming `at` otherwise; images take none).",
        response_class=JSONResponse,
        responses={201: {"model": CommentOut}},
    )

    def delete_comment(
        gen_id: GenId, comment_id: CommentId, services: ServicesDep, principal: PrincipalDep
    ) -> Response:
        services.comments.delete(principal, kind, gen_id, comment_id)
        return Response(status_code=204)

    router.add_api_route(
        f"{one}/comments/{{comment_id}}",
        delete_comment,
        methods=["DELETE"],
        name=f"delete_comment_{kind}",
        tags=tags,
        status_code=204,
        summary=f"Delete a comment on a {kind} item",
        description="Your own comments, and those left through a share link; an admin may delete any.",
        response_class=Response,
        responses={403: {"model": ErrorOut, "description": "Another team member's comment"}},
    )


for _info in KINDS.values():
    _register(_info)


@router.post(
    "/api/bulk",
    tags=["review"],
    response_model=BulkOut,
    responses={
        404: {"model": ErrorOut, "description": "An item does not exist or is not yours; names `items[i]`"}
    },
)
def bulk(body: BulkRequest, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """One action on up to 500 items, all or nothing: approve, reject, in_review, draft,
    favorite, unfavorite, tag / untag (with `tag`), move (with client_id, campaign_id, brief_id
    and/or collection, as PATCH refiles) or delete. Every item is checked before anything
    changes: one missing or hidden item is a 404 naming it (`items[3]`) and changes nothing."""
    result = services.bulk.apply(principal, body)
    return {
        "action": result.action,
        "count": len(result.items),
        "items": [{"kind": item.kind, "id": item.id} for item in result.items],
    }


__all__ = ["router"]
