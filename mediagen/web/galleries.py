"""The galleries (/music, /images, /videos): newest first, filters and page number in the URL."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.vocabulary import KINDS, KindInfo
from mediagen.web.errors import no_such_address
from mediagen.web.listing import (
    blank,
    brief_choices,
    campaign_choices,
    card_items,
    client_choices,
    options_with,
    page_number,
    pager,
)
from mediagen.web.pages import STATUSES, page_router, render
from mediagen.web.session import Me, svc

PAGE_SIZE = 24  # gallery cards per page: 4 rows of 6 at 1440 px, and a round number on phones
MAX_SEARCH = 200  # characters of "prompt contains", as the API allows

# The filters a gallery reads from its URL, in the order its links write them back.
FILTERS = ("client_id", "campaign_id", "brief_id", "status", "model", "collection", "q")

router = page_router()


def gallery_params(request: Request) -> dict[str, str | None]:
    """The gallery's filters from the query string: '' is 'any', an unknown status is ignored."""
    query = request.query_params
    if len(query.get("q") or "") > MAX_SEARCH:
        raise no_such_address()
    params = {name: blank(query.get(name)) for name in FILTERS}
    if params["status"] not in STATUSES:
        params["status"] = None
    return params


def gallery_context(request: Request, me: Principal, info: KindInfo) -> dict[str, object]:
    services = svc(request)
    params = gallery_params(request)
    number = page_number(request.query_params.get("page"))
    client_id, campaign_id, brief_id = params["client_id"], params["campaign_id"], params["brief_id"]
    filters = {
        "client_id": client_id,
        "campaign_id": campaign_id,
        "brief_id": brief_id,
        "status": params["status"],
        "model_id": params["model"],
        "collection": params["collection"],
    }
    rows, total = services.generations.list(
        me, info.kind, filters=filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, q=params["q"]
    )
    related = services.campaigns
    return {
        "kind": info.kind,
        "info": info,
        "gallery": info.gallery,
        "items": card_items(services, info, rows),
        "pager": pager(f"/{info.gallery}", params, page=number, size=PAGE_SIZE, total=total),
        "params": params,
        "filtered": any(v for v in params.values()),
        "clients": options_with(client_choices(services, me), client_id, lambda i: related.get_client(me, i)),
        "campaigns": options_with(
            campaign_choices(services, me, client_id), campaign_id, lambda i: related.get_campaign(me, i)
        ),
        "briefs": options_with(
            brief_choices(services, me, client_id, campaign_id), brief_id, lambda i: related.get_brief(me, i)
        ),
        "models": services.catalog.list(info.kind),
    }


def gallery_handler(info: KindInfo) -> Callable[..., Response]:
    def handler(request: Request, me: Me) -> Response:
        return render(
            request, "gallery.html", gallery_context(request, me, info), me=me, section=info.gallery
        )

    handler.__name__ = f"gallery_{info.gallery}"
    handler.__doc__ = (
        f"The {info.label.lower()} gallery: newest first, filters in the URL, {PAGE_SIZE} a page."
    )
    return handler


for _info in KINDS.values():
    router.add_api_route(
        f"/{_info.gallery}",
        gallery_handler(_info),
        methods=["GET"],
        response_class=HTMLResponse,
        name=f"gallery_{_info.gallery}",
    )
