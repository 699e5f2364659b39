"""Clients: the list with a form for a new one, and one client's page with its campaigns and its
brand (shown, and edited through the same `update_client` the JSON API's PATCH calls)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.errors import invalid
from mediagen.vocabulary import KINDS, Kind, Status
from mediagen.web.forms import FormState, PageForm, Submission, form_route, render_forms
from mediagen.web.listing import LIST_PAGE_SIZE, blank, card_items, page_number, pager
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


ASPECTS: tuple[str, ...] = get_args(sc.Aspect)
LOUDNESS_PRESETS: tuple[str, ...] = get_args(sc.LoudnessPreset)
LOGO_CHOICES = 24  # the client's latest finished images offered as its logo
WORD_LISTS = ("style_keywords", "avoid", "music_genres", "music_moods", "fonts")  # comma-separated
BRAND_FIELDS: dict[str, str | list[str]] = {
    "palette": [],  # one colour input per colour kept
    "palette_drop": [],  # indexes of the colours ticked for removal
    "palette_new": "",
    "palette_add": "",
    **dict.fromkeys(WORD_LISTS, ""),
    "bpm_low": "",
    "bpm_high": "",
    "aspects": [],
    "loudness": "",
    "logo_image_id": "",
    "logo_other": "",
}


def words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def brand_values(brand: sc.Brand | None) -> dict[str, Any]:
    """A stored brand as the editor's fields."""
    b = brand or sc.Brand()
    music = b.music or sc.BrandMusic()
    low, high = music.bpm or ("", "")
    return {
        **BRAND_FIELDS,
        "palette": list(b.palette),
        "style_keywords": ", ".join(b.style_keywords),
        "avoid": ", ".join(b.avoid),
        "music_genres": ", ".join(music.genres),
        "music_moods": ", ".join(music.moods),
        "fonts": ", ".join(b.fonts),
        "bpm_low": str(low),
        "bpm_high": str(high),
        "aspects": list(b.aspects),
        "loudness": b.loudness or "",
        "logo_image_id": str(b.logo_image_id or ""),
    }


def brand_body(f: Submission) -> sc.ClientUpdate:
    """The posted editor as the brand the API takes (validated by the same model)."""
    v = f.values
    dropped = set(v["palette_drop"])
    palette = [c for i, c in enumerate(v["palette"]) if str(i) not in dropped]
    if v["palette_add"] and v["palette_new"]:
        palette.append(v["palette_new"])
    low, high = blank(v["bpm_low"]), blank(v["bpm_high"])
    if (low is None) != (high is None):
        raise invalid("brand.music.bpm", "give both ends of the tempo range, or neither")
    genres, moods = words(v["music_genres"]), words(v["music_moods"])
    music = {"genres": genres, "moods": moods, "bpm": [low, high] if low else None}
    brand = {
        "palette": palette,
        "style_keywords": words(v["style_keywords"]),
        "avoid": words(v["avoid"]),
        "music": music if genres or moods or low else None,
        "aspects": v["aspects"],
        "loudness": blank(v["loudness"]),
        "logo_image_id": blank(v["logo_other"]) or blank(v["logo_image_id"]),
        "fonts": words(v["fonts"]),
    }
    return sc.ClientUpdate.model_validate({"brand": brand})


# An error's place in the brand (`brand.music.bpm`, `brand.palette.2`) -> the editor's field.
_BRAND_ERROR_FIELDS = {"music.genres": "music_genres", "music.moods": "music_moods", "music.bpm": "bpm"}


def brand_errors(errors: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for place, message in errors.items():
        if not place.startswith("brand."):
            out[place] = message
            continue
        parts = place.removeprefix("brand.").split(".")
        name = _BRAND_ERROR_FIELDS.get(".".join(parts[:2]), parts[0])
        if name == "music":
            name = "bpm"
        if name == "palette" and len(parts) > 1:  # one colour (the id-pattern wording does not fit)
            message = "Colours are written #rrggbb (six hex digits)"
        out.setdefault(name, message)
    return out


def logo_choices(request: Request, me: Principal, client_id: str) -> list[dict[str, Any]]:
    services = svc(request)
    info = KINDS[Kind.IMAGE]
    rows, _ = services.generations.list(
        me,
        info.kind,
        filters={"client_id": client_id, "status": Status.COMPLETED},
        limit=LOGO_CHOICES,
        offset=0,
    )
    return card_items(services, info, rows)


def client_render(
    request: Request,
    me: Principal,
    client_id: str,
    form: FormState | None = None,
    brand_form: FormState | None = None,
) -> Response:
    services = svc(request)
    client = services.campaigns.get_client(me, client_id)
    campaigns, total = services.campaigns.list_campaigns(
        me, client_id=client.id, status=None, q=None, limit=LIST_PAGE_SIZE, offset=0
    )
    brand = sc.ClientOut.model_validate(client).brand
    logos = logo_choices(request, me, client.id)
    context: dict[str, Any] = {
        "client": client,
        "brand": brand,
        "campaigns": campaigns,
        "campaign_total": total,
        "stats": services.campaigns.stats(me, "client", client.id),
        "logos": logos,
        "aspects": ASPECTS,
        "loudness_presets": LOUDNESS_PRESETS,
    }
    form = form or FormState({"name": client.name, "description": client.description or ""})
    if brand_form is None:
        values = brand_values(brand)
        if brand and brand.logo_image_id and all(a["id"] != brand.logo_image_id for a in logos):
            values["logo_other"] = values["logo_image_id"]  # an unfiled image: not among the client's
        brand_form = FormState(values)
    forms = {"": form, "brand_": brand_form}
    return render_forms(request, "client.html", context, forms, me=me, section="clients")


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

UPDATE_BRAND = PageForm(
    fields=BRAND_FIELDS,
    build=brand_body,
    act=lambda f, body: f.services.campaigns.update_client(f.me, f.path("client_id"), body),
    done=lambda f, _: f.redirect(f"/clients/{f.path('client_id')}#brand", "Brand saved."),
    again=lambda f, form: client_render(
        f.request,
        f.me,
        f.path("client_id"),
        brand_form=FormState(form.values, brand_errors(form.errors), form.error, form.status_code),
    ),
    missing_is_page=True,
)
form_route(router, "/clients/{client_id}/brand", "update_brand", UPDATE_BRAND)

CLEAR_BRAND = PageForm(
    fields={},
    build=lambda f: sc.ClientUpdate.model_validate({"brand": None}),
    act=lambda f, body: f.services.campaigns.update_client(f.me, f.path("client_id"), body),
    done=lambda f, _: f.redirect(f"/clients/{f.path('client_id')}#brand", "Brand removed."),
    again=lambda f, form: client_render(f.request, f.me, f.path("client_id")),
    missing_is_page=True,
)
form_route(router, "/clients/{client_id}/brand/clear", "clear_brand", CLEAR_BRAND)
