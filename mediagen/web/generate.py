"""The generate page: a model picker and filing choices; `static/app.js` builds the model's inputs
from the embedded catalog and posts the job to the JSON API."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import QueryParams

from mediagen.auth.service import Principal
from mediagen.services import Services
from mediagen.vocabulary import BY_GALLERY, KINDS, Kind
from mediagen.web.errors import not_found_page
from mediagen.web.listing import blank, brief_choices, by_name, campaign_choices, client_choices, name_of
from mediagen.web.pages import page_router, render
from mediagen.web.session import Me, see_other, svc

router = page_router()


def filing_options(services: Services, me: Principal) -> dict[str, Any]:
    return {
        "clients": by_name(client_choices(services, me)),
        "campaigns": by_name(campaign_choices(services, me)),
        "briefs": by_name(brief_choices(services, me), "title"),
    }


def chosen_filing(services: Services, me: Principal, query: QueryParams) -> dict[str, str | None]:
    """What the filing pickers start on: the URL's choice, else what its campaign or brief implies."""
    campaign = name_of(services.campaigns.get_campaign, me, blank(query.get("campaign_id")))
    brief = name_of(services.campaigns.get_brief, me, blank(query.get("brief_id")))
    chosen = {
        "client_id": blank(query.get("client_id"))
        or (campaign.client_id if campaign else None)
        or (brief.client_id if brief else None),
        "campaign_id": campaign.id if campaign else (brief.campaign_id if brief else None),
        "brief_id": brief.id if brief else None,
    }
    if chosen["client_id"] is None and me.clients is not None and len(me.clients) == 1:
        chosen["client_id"] = next(iter(me.clients))
    return chosen


@router.get("/generate", response_class=HTMLResponse)
def generate_default() -> RedirectResponse:
    return see_other(f"/generate/{KINDS[Kind.AUDIO].gallery}")


@router.get("/generate/{gallery}", response_class=HTMLResponse)
def generate_page(request: Request, gallery: str, me: Me) -> Response:
    """`?model=` picks a model, `?client_id=`, `?campaign_id=`, `?brief_id=` the filing."""
    info = BY_GALLERY.get(gallery)
    if info is None:
        raise not_found_page()
    services = svc(request)
    models = [m.model_dump(mode="json") for m in services.router.models(info.kind)]
    available = [m["id"] for m in models if m["available"]]
    model = request.query_params.get("model")
    selected = (
        model
        if model in available
        else next((m["id"] for m in models if m["default"]), available[0] if available else None)
    )
    return render(
        request,
        "generate.html",
        {
            "kind": info.kind,
            "gallery": gallery,
            "info": info,
            "models": models,
            "selected_model": selected,
            "chosen": chosen_filing(services, me, request.query_params),
            **filing_options(services, me),
        },
        me=me,
        section="generate",
    )
