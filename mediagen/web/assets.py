"""One asset's page, and its gallery card on its own (for cards that refresh themselves)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.generations.presenters import asset_json
from mediagen.vocabulary import MAX_ID, KindInfo, kind_info
from mediagen.web.errors import not_found_page
from mediagen.web.filters import iso
from mediagen.web.listing import name_of
from mediagen.web.pages import page_router, render, templates
from mediagen.web.session import Me, svc

router = page_router()


# An id past what a row can hold names nothing: the not-found page, not an overflow.
AssetId = Annotated[int, Path(ge=1, le=MAX_ID)]


def load_asset(request: Request, me: Principal, kind: str, gen_id: int) -> tuple[KindInfo, dict[str, Any]]:
    info = kind_info(kind)
    if info is None:
        raise not_found_page()
    services = svc(request)
    row = services.generations.get(me, kind, gen_id)  # 404 (an HTML page) outside the user's clients
    return info, asset_json(row, info, list(services.generations.derivations(row.id)))


@router.get("/assets/{kind}/{gen_id}", response_class=HTMLResponse)
def asset_page(request: Request, kind: str, gen_id: AssetId, me: Me) -> Response:
    info, asset = load_asset(request, me, kind, gen_id)
    services = svc(request)
    entry = services.catalog.get(asset["model_id"])
    related = services.campaigns
    context = {
        "info": info,
        "kind": kind,
        "asset": asset,
        "gallery": info.gallery,
        "model_title": entry.title if entry else asset["model_id"],
        "model_label": entry.label if entry else None,
        "client": name_of(related.get_client, me, asset["client_id"]),
        "campaign": name_of(related.get_campaign, me, asset["campaign_id"]),
        "brief": name_of(related.get_brief, me, asset["brief_id"]),
        "input_titles": {k: v.get("title", k) for k, v in (entry.properties if entry else {}).items()},
        "media_inputs": entry.media_inputs if entry else {},
        "server_now": iso(datetime.now(UTC)),
    }
    return render(request, "asset.html", context, me=me, section=info.gallery)


@router.get("/assets/{kind}/{gen_id}/card", response_class=HTMLResponse)
def asset_card(request: Request, kind: str, gen_id: AssetId, me: Me) -> Response:
    """One gallery card, for cards of running jobs that refresh themselves in place."""
    info, asset = load_asset(request, me, kind, gen_id)
    return templates.TemplateResponse(request, "card.html", {"a": asset, "kind": kind, "info": info})
