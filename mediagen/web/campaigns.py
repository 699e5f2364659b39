"""Campaigns: the list with a form for a new one, and one campaign's page (its assets by kind, its
briefs with a form to add one, a form to edit it, and its review links)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.vocabulary import KINDS
from mediagen.web.forms import FormState, PageForm, form_route, render_forms
from mediagen.web.listing import (
    LIST_PAGE_SIZE,
    blank,
    brief_choices,
    by_name,
    card_items,
    client_choices,
    name_of,
    page_number,
    pager,
)
from mediagen.web.pages import page_router
from mediagen.web.session import Me, svc
from mediagen.web.shares import campaign_links

CAMPAIGN_STRIP = 4  # cards per kind on a campaign page; the full gallery is one click away

router = page_router()


def campaigns_render(
    request: Request, me: Principal, form: FormState, client_id: str | None = None, page: int = 1
) -> Response:
    services = svc(request)
    rows, total = services.campaigns.list_campaigns(
        me, client_id=client_id, status=None, q=None, limit=LIST_PAGE_SIZE, offset=(page - 1) * LIST_PAGE_SIZE
    )
    clients = by_name(client_choices(services, me))
    names = {c.id: c.name for c in clients}
    for row in rows:
        if row.client_id not in names:
            found = name_of(services.campaigns.get_client, me, row.client_id)
            names[row.client_id] = found.name if found else row.client_id
    context = {
        "campaigns": rows,
        "clients": clients,
        "client_names": names,
        "client_filter": client_id,
        "pager": pager("/campaigns", {"client_id": client_id}, page=page, size=LIST_PAGE_SIZE, total=total),
    }
    return render_forms(request, "campaigns.html", context, {"": form}, me=me, section="campaigns")


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, me: Me, client_id: str | None = None, page: str | None = None
) -> Response:
    client_id = blank(client_id)
    form = FormState({"client_id": client_id or "", "status": "active"})
    return campaigns_render(request, me, form, client_id, page_number(page))


CREATE_CAMPAIGN = PageForm(
    fields={"client_id": "", "id": "", "name": "", "goal": "", "status": "active"},
    build=lambda f: sc.CampaignCreate.model_validate(
        {
            "client_id": f.text("client_id"),
            "id": f.optional("id"),
            "name": f.text("name"),
            "goal": f.optional("goal"),
            "status": f.values["status"],
        }
    ),
    act=lambda f, body: f.services.campaigns.create_campaign(f.me, body),
    done=lambda f, campaign: f.redirect(f"/campaigns/{campaign.id}", f"Created campaign {campaign.name}."),
    again=lambda f, form: campaigns_render(f.request, f.me, form),
)
form_route(router, "/campaigns", "create_campaign", CREATE_CAMPAIGN)


def campaign_render(request: Request, me: Principal, campaign_id: str, **forms: FormState) -> Response:
    """The campaign's page; `forms` are the ones sent back with errors: `edit`, `brief`."""
    services = svc(request)
    campaign = services.campaigns.get_campaign(me, campaign_id)
    strips = []
    for kind, info in KINDS.items():
        rows, total = services.generations.list(
            me, kind, filters={"campaign_id": campaign.id}, limit=CAMPAIGN_STRIP, offset=0
        )
        cards = card_items(services, info, rows)
        strips.append({"kind": kind, "info": info, "gallery": info.gallery, "total": total, "cards": cards})
    context: dict[str, Any] = {
        "campaign": campaign,
        "client": name_of(services.campaigns.get_client, me, campaign.client_id),
        "stats": services.campaigns.stats(me, "campaign", campaign.id),
        "strips": strips,
        "briefs": brief_choices(services, me, campaign_id=campaign.id),
        "share_links": campaign_links(services, me, campaign.id),
    }
    edit = forms.get("edit") or FormState(
        {"name": campaign.name, "goal": campaign.goal or "", "status": campaign.status}
    )
    brief = forms.get("brief") or FormState({})
    return render_forms(
        request, "campaign.html", context, {"": edit, "brief_": brief}, me=me, section="campaigns"
    )


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: str, me: Me) -> Response:
    return campaign_render(request, me, campaign_id)


UPDATE_CAMPAIGN = PageForm(
    fields={"name": "", "goal": "", "status": ""},
    build=lambda f: sc.CampaignUpdate.model_validate(
        {"name": f.text("name"), "goal": f.optional("goal"), "status": f.values["status"] or None}
    ),
    act=lambda f, body: f.services.campaigns.update_campaign(f.me, f.path("campaign_id"), body),
    done=lambda f, _: f.redirect(f"/campaigns/{f.path('campaign_id')}", "Saved."),
    again=lambda f, form: campaign_render(f.request, f.me, f.path("campaign_id"), edit=form),
    missing_is_page=True,
)
form_route(router, "/campaigns/{campaign_id}", "update_campaign", UPDATE_CAMPAIGN)

CREATE_BRIEF = PageForm(
    fields={"title": "", "text": ""},
    build=lambda f: sc.BriefCreate(
        campaign_id=f.path("campaign_id"), title=f.text("title"), text=f.text("text")
    ),
    act=lambda f, body: f.services.campaigns.create_brief(f.me, body),
    done=lambda f, brief: f.redirect(
        f"/campaigns/{f.path('campaign_id')}#briefs", f"Added brief {brief.title}."
    ),
    again=lambda f, form: campaign_render(f.request, f.me, f.path("campaign_id"), brief=form),
    missing_is_page=True,
)
form_route(router, "/campaigns/{campaign_id}/briefs", "create_brief", CREATE_BRIEF)
