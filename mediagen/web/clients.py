"""Clients: the list with a form for a new one, and one client's page with its campaigns."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.web.forms import FormState, PageForm, form_route, render_forms
from mediagen.web.listing import LIST_PAGE_SIZE, page_number, pager
from mediagen.web.pages import page_router
from mediagen.web.session import Me, svc

router = page_router()


def clients_render(request: Request, me: Principal, form: FormState, page: int = 1) -> Response:
    rows, total = svc(request).campaigns.list_clients(
        me, q=None, limit=LIST_PAGE_SIZE, offset=(page - 1) * LIST_PAGE_SIZE
    )
    listing = {"clients": rows, "pager": pager("/clients", {}, page=page, size=LIST_PAGE_SIZE, total=total)}
    return render_forms(request, "clients.html", listing, {"": form}, me=me, section="clients")


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, me: Me, page: str | None = None) -> Response:
    return clients_render(request, me, FormState({}), page_number(page))


CREATE_CLIENT = PageForm(
    fields={"id": "", "name": "", "description": ""},
    build=lambda f: sc.ClientCreate(
        id=f.optional("id"), name=f.text("name"), description=f.optional("description")
    ),
    act=lambda f, body: f.services.campaigns.create_client(f.me, body),
    done=lambda f, client: f.redirect(f"/clients/{client.id}", f"Created client {client.name}."),
    again=lambda f, form: clients_render(f.request, f.me, form),
    error_status=400,
)
form_route(router, "/clients", "create_client", CREATE_CLIENT)


def client_render(request: Request, me: Principal, client_id: str, form: FormState | None = None) -> Response:
    services = svc(request)
    client = services.campaigns.get_client(me, client_id)
    campaigns, total = services.campaigns.list_campaigns(
        me, client_id=client.id, status=None, q=None, limit=LIST_PAGE_SIZE, offset=0
    )
    context: dict[str, Any] = {
        "client": client,
        "campaigns": campaigns,
        "campaign_total": total,
        "stats": services.campaigns.stats(me, "client", client.id),
    }
    form = form or FormState({"name": client.name, "description": client.description or ""})
    return render_forms(request, "client.html", context, {"": form}, me=me, section="clients")


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def client_page(request: Request, client_id: str, me: Me) -> Response:
    return client_render(request, me, client_id)


UPDATE_CLIENT = PageForm(
    fields={"name": "", "description": ""},
    build=lambda f: sc.ClientUpdate(name=f.text("name"), description=f.optional("description")),
    act=lambda f, body: f.services.campaigns.update_client(f.me, f.path("client_id"), body),
    done=lambda f, _: f.redirect(f"/clients/{f.path('client_id')}", "Saved."),
    again=lambda f, form: client_render(f.request, f.me, f.path("client_id"), form),
    missing_is_page=True,
)
form_route(router, "/clients/{client_id}", "update_client", UPDATE_CLIENT)
