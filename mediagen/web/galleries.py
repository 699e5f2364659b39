"""The galleries (/music, /images, /videos): filters, search, order and page number in the URL.

A gallery reads its own query string, not the API's: a value it cannot use (an unknown status, a
rating of 9, a sort it does not offer) is "any", so an old or hand-edited link still shows a page.
Only the filters the service knows are passed on, so the API's "unknown filter is a 422" rule
never meets `page` or anything else that belongs to the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mediagen.auth.service import Principal
from mediagen.vocabulary import KINDS, KindInfo, ReviewStatus
from mediagen.web.errors import no_such_address
from mediagen.web.listing import (
    blank,
    brief_choices,
    campaign_choices,
    campaign_labels,
    card_items,
    client_choices,
    options_with,
    page_number,
    page_url,
    pager,
)
from mediagen.web.pages import STATUSES, page_router, render, templates
from mediagen.web.session import Me, svc

PAGE_SIZE = 24  # gallery cards per page: 4 rows of 6 at 1440 px, and a round number on phones
MAX_SEARCH = 200  # characters of a search, as the API allows
MAX_WORD = 128  # a tag, collection or take group in the URL

# The filters a gallery reads from its URL, in the order its links write them back.
FILTERS = (
    "q",
    "client_id",
    "campaign_id",
    "brief_id",
    "status",
    "model",
    "collection",
    "review_status",
    "favorite",
    "tag",
    "rating_min",
    "take_group",
    "sort",
)
REVIEW_STATUSES: tuple[str, ...] = tuple(ReviewStatus)
REVIEW_LABELS = {"draft": "Draft", "in_review": "In review", "approved": "Approved", "rejected": "Rejected"}
# The orders a gallery offers, as the API spells them; none given is newest first (or, with a
# search, the best match first).
SORTS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "-rating": "Rating, high to low",
    "-duration": "Longest first",
    "duration": "Shortest first",
}
FAVORITES = {"true": True, "false": False}

router = page_router()
templates.env.globals.update(
    REVIEW_STATUSES=REVIEW_STATUSES, REVIEW_LABELS=REVIEW_LABELS, SORTS=SORTS, campaign_labels=campaign_labels
)


def gallery_params(request: Request) -> dict[str, str | None]:
    """The gallery's filters from the query string: '' is 'any', and so is a value it cannot use."""
    query = request.query_params
    if len(query.get("q") or "") > MAX_SEARCH:
        raise no_such_address()
    params = {name: blank(query.get(name)) for name in FILTERS}
    allowed: dict[str, Any] = {
        "status": STATUSES,
        "review_status": REVIEW_STATUSES,
        "favorite": FAVORITES,
        "rating_min": ("1", "2", "3", "4", "5"),
        "sort": SORTS,
    }
    for name, values in allowed.items():
        if params[name] not in values:
            params[name] = None
    if params["sort"] == "-created":
        params["sort"] = None  # the default, and the links stay short
    for name in ("tag", "collection", "take_group", "model"):
        value = params[name]
        if value is not None and len(value) > MAX_WORD:
            params[name] = None
    return params


def service_filters(params: dict[str, str | None]) -> dict[str, Any]:
    """The page's filters as the service names and types them."""
    favorite, rating = params["favorite"], params["rating_min"]
    return {
        "client_id": params["client_id"],
        "campaign_id": params["campaign_id"],
        "brief_id": params["brief_id"],
        "status": params["status"],
        "model_id": params["model"],
        "collection": params["collection"],
        "review_status": params["review_status"],
        "favorite": FAVORITES[favorite] if favorite else None,
        "tag": params["tag"],
        "rating_min": int(rating) if rating else None,
        "take_group": params["take_group"],
    }


def order_text(params: dict[str, str | None]) -> str:
    """How the summary line says the page is ordered."""
    if params["sort"]:
        return SORTS[params["sort"]].lower()
    return "best match first" if params["q"] else "newest first"


def gallery_context(request: Request, me: Principal, info: KindInfo) -> dict[str, Any]:
    services = svc(request)
    params = gallery_params(request)
    number = page_number(request.query_params.get("page"))
    client_id, campaign_id, brief_id = params["client_id"], params["campaign_id"], params["brief_id"]
    rows, total = services.generations.list(
        me,
        info.kind,
        filters=service_filters(params),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
        q=params["q"],
        sort=params["sort"],
    )
    related = services.campaigns
    clients = options_with(client_choices(services, me), client_id, lambda i: related.get_client(me, i))
    # Every campaign and brief the user can see: the page script narrows them to the chosen
    # client at once, without a round trip.
    campaigns = options_with(
        campaign_choices(services, me), campaign_id, lambda i: related.get_campaign(me, i)
    )
    return {
        "kind": info.kind,
        "info": info,
        "gallery": info.gallery,
        "items": card_items(services, info, rows),
        "pager": pager(f"/{info.gallery}", params, page=number, size=PAGE_SIZE, total=total),
        "params": params,
        "filtered": any(v for k, v in params.items() if k != "sort"),
        "order": order_text(params),
        "clients": clients,
        "campaigns": campaign_labels(campaigns, clients),
        "briefs": options_with(brief_choices(services, me), brief_id, lambda i: related.get_brief(me, i)),
        "models": services.catalog.list(info.kind),
    }


def gallery_handler(info: KindInfo) -> Callable[..., Response]:
    def handler(request: Request, me: Me) -> Response:
        context = gallery_context(request, me, info)
        p = context["pager"]
        if p.number > p.pages:
            # Past the last page (an old link, or items deleted since): the last page that has
            # anything, rather than an empty grid above "27–27 of 27".
            return RedirectResponse(page_url(f"/{info.gallery}", context["params"], p.pages), status_code=303)
        return render(request, "gallery.html", context, me=me, section=info.gallery)

    handler.__name__ = f"gallery_{info.gallery}"
    handler.__doc__ = (
        f"The {info.label.lower()} gallery: search, filters and order in the URL, {PAGE_SIZE} a page."
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
