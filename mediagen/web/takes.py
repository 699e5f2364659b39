"""Takes on pages: a take group's compare page, and the takes panel of an asset page.

The compare page (`/takes/{take_group}`) shows a group's takes side by side: tracks under one
shared transport (switching take keeps the position), images in a grid, videos played in sync.
Each take says its seed, status and review status, and one is picked as the winner through the
JSON API (`static/takes.js`), which approves it and rejects the others. The takes the user may not
see are left out, and a group with none they may see is the not-found page.

The asset page's panel (`_asset_takes.html`) reads `take_panel`: the seed, a "same seed" rerun,
where the asset stands in its group ("Take 2 of 4 · compare"), "Edit and rerun", and what else can
be made from it here (a video from an image, a track continued or its melody followed).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.errors import MediagenError
from mediagen.generations.takes import TAKE_GROUP_PATTERN, winner_of
from mediagen.vocabulary import ACTIVE, KINDS, Kind
from mediagen.web.listing import card_items, name_of
from mediagen.web.pages import page_router, render, templates
from mediagen.web.prefill import asset_actions
from mediagen.web.session import Me, svc

router = page_router()

# A path that cannot be a group id names no page (the not-found page, never a query).
TakeGroup = Annotated[str, Path(pattern=TAKE_GROUP_PATTERN)]


def take_letter(index: int) -> str:
    """Takes are A, B, C … on the compare page: short enough for a button ("Listen to B")."""
    return chr(ord("A") + index) if index < 26 else str(index + 1)


@router.get("/takes/{take_group}", response_class=HTMLResponse)
def takes_page(request: Request, take_group: TakeGroup, me: Me) -> Response:
    services = svc(request)
    rows = services.takes.group(me, take_group)
    info = KINDS[Kind(rows[0].kind)]
    takes = card_items(services, info, rows)
    for i, take in enumerate(takes):
        take["letter"] = take_letter(i)
    first = takes[0]
    entry = services.catalog.get(first["model_id"])
    related = services.campaigns
    context = {
        "info": info,
        "kind": info.kind.value,
        "gallery": info.gallery,
        "take_group": take_group,
        "takes": takes,
        "first": first,
        "winner": winner_of(list(rows)),
        "model_title": entry.title if entry else first["model_id"],
        "client": name_of(related.get_client, me, first["client_id"]),
        "campaign": name_of(related.get_campaign, me, first["campaign_id"]),
        "data": {"take_group": take_group, "kind": info.kind.value, "path": info.path, "takes": takes},
    }
    return render(request, "takes.html", context, me=me, section=info.gallery)


# the asset page's takes panel ------------------------------------------------------------------
def take_panel(request: Request, me: Principal | None, asset: dict[str, Any]) -> dict[str, Any]:
    """What `_asset_takes.html` shows for one asset (a template global: the asset page is another
    module's, and this keeps what takes add to it here)."""
    services = svc(request)
    group = asset.get("take_group")
    position = count = None
    if group and me is not None:
        try:
            ids = [r.id for r in services.takes.group(me, group)]
        except MediagenError:
            ids = []
        if asset["id"] in ids:
            position, count = ids.index(asset["id"]) + 1, len(ids)
    return {
        "seed": asset.get("seed"),
        "take_group": group,
        "position": position,
        "count": count,
        "actions": asset_actions(services, asset["kind"]),
        "running": asset["status"] in ACTIVE,
    }


def rerun_url(request: Request, asset: dict[str, Any]) -> str | None:
    """Where "Edit and rerun" opens the generate form, or None for an asset no model made (an
    upload, or a model since removed from the catalog)."""
    info = KINDS[Kind(asset["kind"])]
    if svc(request).catalog.get(asset["model_id"]) is None:
        return None
    return f"/generate/{info.gallery}?from={info.kind.value}:{asset['id']}"


templates.env.globals.update(take_panel=take_panel, rerun_url=rerun_url)
