"""Campaigns: the list with a form for a new one, and one campaign's page (its assets by kind, its
money against its budget, its briefs with a form to add one, a form to edit it, and its review
links); and one brief's page, which shows and edits its structured direction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.campaigns.channels import CHANNELS
from mediagen.campaigns.tables import Brief
from mediagen.vocabulary import KINDS
from mediagen.web.forms import FormState, PageForm, Submission, form_route, render_forms
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


def money(text: str | None) -> str | None:
    """A budget as typed ("$1,200.50" reads as 1200.50); empty is no budget."""
    return text.replace("$", "").replace(",", "").strip() or None if text else None


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
    fields={"client_id": "", "id": "", "name": "", "goal": "", "status": "active", "budget_usd": ""},
    build=lambda f: sc.CampaignCreate.model_validate(
        {
            "client_id": f.text("client_id"),
            "id": f.optional("id"),
            "name": f.text("name"),
            "goal": f.optional("goal"),
            "status": f.values["status"],
            "budget_usd": money(f.values["budget_usd"]),
        }
    ),
    act=lambda f, body: f.services.campaigns.create_campaign(f.me, body),
    done=lambda f, campaign: f.redirect(f"/campaigns/{campaign.id}", f"Created campaign {campaign.name}."),
    again=lambda f, form: campaigns_render(f.request, f.me, form),
)
form_route(router, "/campaigns", "create_campaign", CREATE_CAMPAIGN)


# The brief's structured fields as a form: lists one item a line (lengths: numbers, any separator).
BRIEF_FORM_FIELDS: dict[str, str | list[str]] = {
    "objective": "",
    "audience": "",
    "key_messages": "",
    "tone": "",
    "channels": [],
    "lengths": "",
    "must_haves": "",
}
LINE_LISTS = ("key_messages", "must_haves")


def lines(text: str) -> list[str] | None:
    found = [line.strip() for line in text.splitlines() if line.strip()]
    return found or None


def brief_fields(f: Submission) -> dict[str, Any]:
    v = f.values
    lengths = [n for n in re.split(r"[\s,;]+", v["lengths"]) if n.strip()]
    return {
        "objective": f.optional("objective"),
        "audience": f.optional("audience"),
        "key_messages": lines(v["key_messages"]),
        "tone": f.optional("tone"),
        "channels": v["channels"] or None,
        "lengths": lengths or None,
        "must_haves": lines(v["must_haves"]),
    }


def brief_values(brief: Brief | None) -> dict[str, Any]:
    if brief is None:
        return {**BRIEF_FORM_FIELDS}
    out = sc.BriefOut.model_validate(brief)
    return {
        "title": out.title,
        "text": out.text,
        "objective": out.objective or "",
        "audience": out.audience or "",
        "key_messages": "\n".join(out.key_messages),
        "tone": out.tone or "",
        "channels": list(out.channels),
        "lengths": ", ".join(f"{n:g}" for n in out.lengths),
        "must_haves": "\n".join(out.must_haves),
    }


def field_of(errors: Mapping[str, str]) -> dict[str, str]:
    """`channels.1` -> `channels`: a list's item error beside the list's field."""
    out: dict[str, str] = {}
    for place, message in errors.items():
        out.setdefault(place.split(".")[0], message)
    return out


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
        "channels": list(CHANNELS.values()),
    }
    budget = "" if campaign.budget_usd is None else f"{campaign.budget_usd:g}"
    edit = forms.get("edit") or FormState(
        {"name": campaign.name, "goal": campaign.goal or "", "status": campaign.status, "budget_usd": budget}
    )
    brief = forms.get("brief") or FormState({})
    return render_forms(
        request, "campaign.html", context, {"": edit, "brief_": brief}, me=me, section="campaigns"
    )


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: str, me: Me) -> Response:
    return campaign_render(request, me, campaign_id)


UPDATE_CAMPAIGN = PageForm(
    fields={"name": "", "goal": "", "status": "", "budget_usd": ""},
    build=lambda f: sc.CampaignUpdate.model_validate(
        {
            "name": f.text("name"),
            "goal": f.optional("goal"),
            "status": f.values["status"] or None,
            "budget_usd": money(f.values["budget_usd"]),
        }
    ),
    act=lambda f, body: f.services.campaigns.update_campaign(f.me, f.path("campaign_id"), body),
    done=lambda f, _: f.redirect(f"/campaigns/{f.path('campaign_id')}", "Saved."),
    again=lambda f, form: campaign_render(f.request, f.me, f.path("campaign_id"), edit=form),
    missing_is_page=True,
)
form_route(router, "/campaigns/{campaign_id}", "update_campaign", UPDATE_CAMPAIGN)

CREATE_BRIEF = PageForm(
    fields={"title": "", "text": "", **BRIEF_FORM_FIELDS},
    build=lambda f: sc.BriefCreate.model_validate(
        {
            "campaign_id": f.path("campaign_id"),
            "title": f.text("title"),
            "text": f.text("text"),
            **brief_fields(f),
        }
    ),
    act=lambda f, body: f.services.campaigns.create_brief(f.me, body),
    done=lambda f, brief: f.redirect(f"/briefs/{brief.id}", f"Added brief {brief.title}."),
    again=lambda f, form: campaign_render(
        f.request,
        f.me,
        f.path("campaign_id"),
        brief=FormState(form.values, field_of(form.errors), form.error, form.status_code),
    ),
    missing_is_page=True,
)
form_route(router, "/campaigns/{campaign_id}/briefs", "create_brief", CREATE_BRIEF)


def brief_render(request: Request, me: Principal, brief_id: str, form: FormState | None = None) -> Response:
    services = svc(request)
    brief = services.campaigns.get_brief(me, brief_id)
    context: dict[str, Any] = {
        "brief": sc.BriefOut.model_validate(brief),
        "campaign": name_of(services.campaigns.get_campaign, me, brief.campaign_id),
        "client": name_of(services.campaigns.get_client, me, brief.client_id),
        "channels": list(CHANNELS.values()),
    }
    form = form or FormState(brief_values(brief))
    return render_forms(request, "brief.html", context, {"": form}, me=me, section="campaigns")


@router.get("/briefs/{brief_id}", response_class=HTMLResponse)
def brief_page(request: Request, brief_id: str, me: Me) -> Response:
    return brief_render(request, me, brief_id)


UPDATE_BRIEF = PageForm(
    fields={"title": "", "text": "", **BRIEF_FORM_FIELDS},
    # Every field is sent: one left empty is cleared, as the form shows it.
    build=lambda f: sc.BriefUpdate.model_validate(
        {"title": f.text("title"), "text": f.text("text"), **brief_fields(f)}
    ),
    act=lambda f, body: f.services.campaigns.update_brief(f.me, f.path("brief_id"), body),
    done=lambda f, _: f.redirect(f"/briefs/{f.path('brief_id')}", "Saved."),
    again=lambda f, form: brief_render(
        f.request,
        f.me,
        f.path("brief_id"),
        FormState(form.values, field_of(form.errors), form.error, form.status_code),
    ),
    missing_is_page=True,
)
form_route(router, "/briefs/{brief_id}", "update_brief", UPDATE_BRIEF)
