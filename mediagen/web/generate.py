"""The generate page: a model picker, the takes and seed, and filing choices; `static/app.js` builds
the model's inputs from the embedded catalog and posts the job to the JSON API.

Opened from an asset (`?from=`, `?image_id=`, `?continue=`, `?melody=`), the form starts from it
(`prefill.py`). The tabs carry the filing chosen, so switching kind keeps it; `/generate/audio`,
`/generate/image` and `/generate/video` (the kinds' own names) lead to the tabs' addresses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import QueryParams

from mediagen.auth.service import Principal
from mediagen.services import Services
from mediagen.vocabulary import BY_GALLERY, KINDS, Kind
from mediagen.web.errors import not_found_page
from mediagen.web.listing import blank, brief_choices, by_name, campaign_choices, client_choices, name_of
from mediagen.web.pages import page_router, render
from mediagen.web.prefill import FILING, FormStart, form_start, source_ref
from mediagen.web.session import Me, see_other, svc

router = page_router()

# /generate/audio, /generate/image, /generate/video: each kind's own name leads to its tab.
ALIASES = {info.kind.value: info.gallery for info in KINDS.values() if info.kind.value != info.gallery}


def filing_options(services: Services, me: Principal) -> dict[str, Any]:
    return {
        "clients": by_name(client_choices(services, me)),
        "campaigns": by_name(campaign_choices(services, me)),
        "briefs": by_name(brief_choices(services, me), "title"),
    }


def chosen_filing(
    services: Services, me: Principal, query: QueryParams, start: FormStart | None = None
) -> dict[str, str | None]:
    """What the filing pickers start on: the URL's choice, else the source asset's filing (a
    rerun is filed where the original was), else what the campaign or brief implies."""
    given = {name: blank(query.get(name)) for name in FILING}
    if start is not None and not any(given.values()):
        given = dict(start.filing)
    campaign = name_of(services.campaigns.get_campaign, me, given["campaign_id"])
    brief = name_of(services.campaigns.get_brief, me, given["brief_id"])
    chosen = {
        "client_id": given["client_id"]
        or (campaign.client_id if campaign else None)
        or (brief.client_id if brief else None),
        "campaign_id": campaign.id if campaign else (brief.campaign_id if brief else None),
        "brief_id": brief.id if brief else None,
        "collection": given["collection"],
    }
    if chosen["client_id"] is None and me.clients is not None and len(me.clients) == 1:
        chosen["client_id"] = next(iter(me.clients))
    return chosen


@router.get("/generate", response_class=HTMLResponse)
def generate_default() -> RedirectResponse:
    return see_other(f"/generate/{KINDS[Kind.AUDIO].gallery}")


def tab_query(chosen: dict[str, str | None]) -> str:
    """The filing as the tabs' query string, so another kind's tab opens with the same filing."""
    kept = [(name, chosen[name]) for name in FILING if chosen.get(name)]
    return f"?{urlencode(kept)}" if kept else ""


@router.get("/generate/{gallery}", response_class=HTMLResponse)
def generate_page(request: Request, gallery: str, me: Me) -> Response:
    """`?model=` picks a model, `?client_id=`, `?campaign_id=`, `?brief_id=`, `?collection=` the
    filing; `?from=<kind>:<id>` reruns an asset, `?image_id=` animates an image, `?continue=` and
    `?melody=` start from a track."""
    query = request.query_params
    info = BY_GALLERY.get(gallery)
    if info is None and gallery in ALIASES:
        return RedirectResponse(f"/generate/{ALIASES[gallery]}{'?' + str(query) if query else ''}", 301)
    if info is None:
        raise not_found_page()
    ref = source_ref(query.get("from"))
    if ref is not None and ref[0].kind != info.kind:
        return see_other(f"/generate/{ref[0].gallery}?{query}")
    services = svc(request)
    start = form_start(services, me, info, query)
    models = [m.model_dump(mode="json") for m in services.router.models(info.kind)]
    available = [m["id"] for m in models if m["available"]]
    model = start.model or query.get("model")
    selected = (
        model
        if model in available
        else next((m["id"] for m in models if m["default"]), available[0] if available else None)
    )
    chosen = chosen_filing(services, me, query, start if start.source else None)
    return render(
        request,
        "generate.html",
        {
            "kind": info.kind,
            "gallery": gallery,
            "info": info,
            "models": models,
            "unavailable_count": len(models) - len(available),
            "selected_model": selected,
            "chosen": chosen,
            "collection_value": chosen["collection"],
            "tab_query": tab_query(chosen),
            "start": start,
            "max_takes": services.settings.max_takes,
            **filing_options(services, me),
        },
        me=me,
        section="generate",
    )
