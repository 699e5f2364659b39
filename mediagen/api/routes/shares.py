"""Review links, the team's side: make one for an asset, a take group or a campaign, list them,
revoke them. What a link opens is served under its token (`share_access.py`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.api.limits import IdFilter, Limit, Offset
from mediagen.studio.share_schemas import ShareCreate, ShareCreated, ShareList
from mediagen.vocabulary import MAX_ID, Kind

router = APIRouter(prefix="/api/shares", tags=["shares"], responses=ERROR_RESPONSES)

ShareId = Annotated[int, Path(ge=1, le=MAX_ID, description="The link's id")]
TARGET_MISSING: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorOut,
        "description": "The target does not exist or is not yours (`errors` names `target`)",
    },
}


@router.post("", status_code=201, response_model=ShareCreated, responses=TARGET_MISSING)
def create_share(
    body: ShareCreate, request: Request, services: ServicesDep, principal: PrincipalDep
) -> ShareCreated:
    """Make a review link that works without an account until it expires or is revoked. `url` is
    absolute (on `MEDIAGEN_PUBLIC_URL` when set, else on this request's host) and holds the token:
    it is shown only in this answer."""
    return services.shares.create(principal, body, base_url=str(request.base_url))


@router.get("", response_model=ShareList)
def list_shares(
    services: ServicesDep,
    principal: PrincipalDep,
    campaign_id: IdFilter = None,
    kind: Annotated[Kind | None, Query(description="With `id`: links to this one asset")] = None,
    asset_id: Annotated[
        int | None, Query(alias="id", ge=1, le=MAX_ID, description="With `kind`: links to this asset")
    ] = None,
    take_group: Annotated[str | None, Query(max_length=32, description="Links to this take group")] = None,
    active: Annotated[
        bool | None, Query(description="true: only working links; false: only revoked or expired ones")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ShareList:
    """Links the caller can see, newest first (never their tokens). `campaign_id` lists every link
    filed under the campaign: its own, and those of its assets and take groups."""
    rows, total = services.shares.list_visible(
        principal,
        campaign_id=campaign_id,
        kind=kind,
        asset_id=asset_id,
        take_group=take_group,
        active=active,
        limit=limit,
        offset=offset,
    )
    return ShareList(shares=rows, count=len(rows), total=total)


@router.delete("/{share_id}", status_code=204)
def revoke_share(share_id: ShareId, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Revoke a link: from now on it answers 410 Gone. Revoking twice is harmless."""
    services.shares.revoke(principal, share_id)
    return Response(status_code=204)
