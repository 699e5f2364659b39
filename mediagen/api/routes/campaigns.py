"""Clients, campaigns and briefs: CRUD, filters, pagination and stats."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut
from mediagen.api.limits import MAX_FILTER_LENGTH, IdFilter, Limit, Offset, RecordId
from mediagen.campaigns import schemas as sc

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES)

Cascade = Annotated[bool, Query(description="Also delete the generated assets filed under it")]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Duplicate id, or assets remain"}
}
Search = Annotated[str | None, Query(max_length=MAX_FILTER_LENGTH, description="Name contains")]


@router.post("/clients", status_code=201, response_model=sc.ClientOut, tags=["clients"], responses=CONFLICT)
def create_client(body: sc.ClientCreate, services: ServicesDep, principal: PrincipalDep) -> object:
    """Create a client (the id may be chosen, e.g. `acme`), optionally with its brand."""
    return services.campaigns.create_client(principal, body)


@router.get("/clients", response_model=sc.ClientList, tags=["clients"])
def list_clients(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    offset: Offset = 0,
    q: Search = None,
) -> sc.ClientList:
    """List clients visible to this key, newest first."""
    rows, total = services.campaigns.list_clients(principal, q=q, limit=limit, offset=offset)
    return sc.ClientList(clients=[sc.ClientOut.model_validate(r) for r in rows], count=len(rows), total=total)


@router.get("/clients/{client_id}", response_model=sc.ClientOut, tags=["clients"])
def get_client(client_id: RecordId, services: ServicesDep, principal: PrincipalDep) -> object:
    """One client."""
    return services.campaigns.get_client(principal, client_id)


@router.patch("/clients/{client_id}", response_model=sc.ClientOut, tags=["clients"])
def update_client(
    client_id: RecordId, body: sc.ClientUpdate, services: ServicesDep, principal: PrincipalDep
) -> object:
    """Change a client's name, description or brand. A brand sent replaces the stored one whole
    (`"brand": null` clears it); its logo must be a completed image of this client or of none."""
    return services.campaigns.update_client(principal, client_id, body)


@router.delete("/clients/{client_id}", status_code=204, tags=["clients"], responses=CONFLICT)
def delete_client(
    client_id: RecordId, services: ServicesDep, principal: PrincipalDep, cascade: Cascade = False
) -> Response:
    """Delete a client with its campaigns and briefs (409 while assets remain, unless cascade)."""
    services.campaigns.delete_client(principal, client_id, cascade=cascade)
    return Response(status_code=204)


@router.get("/clients/{client_id}/stats", response_model=sc.Stats, tags=["clients"])
def client_stats(client_id: RecordId, services: ServicesDep, principal: PrincipalDep) -> sc.Stats:
    """Asset counts by kind and status, total duration, cost (estimated, actual, spent,
    committed) and performance (views, clicks, conversions, CTR)."""
    return services.campaigns.stats(principal, "client", client_id)


@router.post(
    "/campaigns", status_code=201, response_model=sc.CampaignOut, tags=["campaigns"], responses=CONFLICT
)
def create_campaign(body: sc.CampaignCreate, services: ServicesDep, principal: PrincipalDep) -> object:
    """Create a campaign under a client (the id may be chosen, e.g. `campaign_123`)."""
    return services.campaigns.create_campaign(principal, body)


@router.get("/campaigns", response_model=sc.CampaignList, tags=["campaigns"])
def list_campaigns(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    offset: Offset = 0,
    client_id: IdFilter = None,
    status: sc.CampaignStatus | None = None,
    q: Search = None,
) -> sc.CampaignList:
    """List campaigns, newest first."""
    rows, total = services.campaigns.list_campaigns(
        principal, client_id=client_id, status=status, q=q, limit=limit, offset=offset
    )
    return sc.CampaignList(
        campaigns=[sc.CampaignOut.model_validate(r) for r in rows], count=len(rows), total=total
    )


@router.get("/campaigns/{campaign_id}", response_model=sc.CampaignOut, tags=["campaigns"])
def get_campaign(campaign_id: RecordId, services: ServicesDep, principal: PrincipalDep) -> object:
    """One campaign."""
    return services.campaigns.get_campaign(principal, campaign_id)


@router.patch("/campaigns/{campaign_id}", response_model=sc.CampaignOut, tags=["campaigns"])
def update_campaign(
    campaign_id: RecordId, body: sc.CampaignUpdate, services: ServicesDep, principal: PrincipalDep
) -> object:
    """Change a campaign's name, goal, status or budget (`"budget_usd": null` removes it)."""
    return services.campaigns.update_campaign(principal, campaign_id, body)


@router.delete("/campaigns/{campaign_id}", status_code=204, tags=["campaigns"], responses=CONFLICT)
def delete_campaign(
    campaign_id: RecordId, services: ServicesDep, principal: PrincipalDep, cascade: Cascade = False
) -> Response:
    """Delete a campaign and its briefs (409 while assets remain, unless cascade)."""
    services.campaigns.delete_campaign(principal, campaign_id, cascade=cascade)
    return Response(status_code=204)


@router.get("/campaigns/{campaign_id}/stats", response_model=sc.Stats, tags=["campaigns"])
def campaign_stats(campaign_id: RecordId, services: ServicesDep, principal: PrincipalDep) -> sc.Stats:
    """Asset counts by kind and status, total duration, cost (estimated, actual, spent,
    committed), the budget block when the campaign has a budget (spent, committed, remaining)
    and performance (views, clicks, conversions, CTR)."""
    return services.campaigns.stats(principal, "campaign", campaign_id)


@router.post("/briefs", status_code=201, response_model=sc.BriefOut, tags=["briefs"], responses=CONFLICT)
def create_brief(body: sc.BriefCreate, services: ServicesDep, principal: PrincipalDep) -> object:
    """Create a creative brief for a client, optionally within a campaign, with its structured
    direction (objective, audience, key messages, tone, channels, lengths, must-haves)."""
    return services.campaigns.create_brief(principal, body)


@router.get("/briefs", response_model=sc.BriefList, tags=["briefs"])
def list_briefs(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    offset: Offset = 0,
    client_id: IdFilter = None,
    campaign_id: IdFilter = None,
) -> sc.BriefList:
    """List briefs, newest first, as summaries (the start of the text; GET one for all of it and
    the direction)."""
    rows, total = services.campaigns.list_briefs(
        principal, client_id=client_id, campaign_id=campaign_id, limit=limit, offset=offset
    )
    return sc.BriefList(briefs=rows, count=len(rows), total=total)


@router.get("/briefs/{brief_id}", response_model=sc.BriefOut, tags=["briefs"])
def get_brief(brief_id: RecordId, services: ServicesDep, principal: PrincipalDep) -> object:
    """One brief."""
    return services.campaigns.get_brief(principal, brief_id)


@router.patch("/briefs/{brief_id}", response_model=sc.BriefOut, tags=["briefs"])
def update_brief(
    brief_id: RecordId, body: sc.BriefUpdate, services: ServicesDep, principal: PrincipalDep
) -> object:
    """Change a brief's title, text, direction, structured fields or campaign (a field sent
    replaces the stored one; null clears an optional one)."""
    return services.campaigns.update_brief(principal, brief_id, body)


@router.delete("/briefs/{brief_id}", status_code=204, tags=["briefs"])
def delete_brief(brief_id: RecordId, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Delete a brief (its assets stay, unfiled from it)."""
    services.campaigns.delete_brief(principal, brief_id)
    return Response(status_code=204)
