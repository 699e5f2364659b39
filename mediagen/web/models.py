"""The model browser on pages: search Replicate, look at a model's inputs and example output, add
it to the catalog (admins), and the list of added models with remove (admins).

Everyone may browse; adding and removing are for an admin whose account reaches every client,
as in the API (`services.model_browser` checks it again). Without a Replicate token the page says
so and still lists the added models. Example outputs and covers are served by Replicate's file
hosts, so this page's Content-Security-Policy lets images and media load from the hosts the
server already downloads from (`MEDIAGEN_DOWNLOAD_ALLOWED_HOSTS`), and only those are shown.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.catalog.browse_schemas import AddModelIn, PreviewOut, SearchOut
from mediagen.catalog.registry import ModelEntry
from mediagen.config import Settings
from mediagen.errors import Forbidden, MediagenError, NotFound
from mediagen.vocabulary import KINDS, Kind
from mediagen.web.errors import not_found_page
from mediagen.web.forms import FormState, PageForm, Posted, Submission, handle_form, posted_text, render_forms
from mediagen.web.pages import CSP, page_router
from mediagen.web.session import Me, check_csrf, flash, see_other, svc

router = page_router()

NamePart = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")
ADD_FIELDS = {"model": "", "version": "", "kind": "", "q": ""}


def may_manage(me: Principal) -> bool:
    """Adding and removing models: an admin who reaches every client (the models are for all)."""
    return me.is_admin and me.clients is None


def media_hosts(settings: Settings) -> list[str]:
    """The allowed download hosts that are plain origins, usable in a CSP source list."""
    return [h for h in settings.download_allowed_hosts if ORIGIN.match(h)]


def shown(url: str | None, hosts: list[str]) -> str | None:
    """`url` when the page's policy lets it load (one of `hosts`, `*.` matching subdomains)."""
    if not url:
        return None
    for host in hosts:
        scheme, _, rest = host.partition("://")
        if rest.startswith("*."):
            pattern = rf"^{re.escape(scheme)}://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*{re.escape(rest[1:])}(/|$)"
        else:
            pattern = rf"^{re.escape(host)}(/|$)"
        if re.match(pattern, url):
            return url
    return None


def page_csp(hosts: list[str]) -> str:
    extra = " ".join(hosts)
    if not extra:
        return CSP
    return CSP.replace("img-src 'self' data: blob:", f"img-src 'self' data: blob: {extra}").replace(
        "media-src 'self' blob:", f"media-src 'self' blob: {extra}"
    )


def with_media_policy(response: Response, hosts: list[str]) -> Response:
    response.headers["Content-Security-Policy"] = page_csp(hosts)
    return response


def gallery_of(kind: str) -> str | None:
    info = KINDS.get(Kind(kind)) if kind in set(Kind) else None
    return info.gallery if info else None


# the browse page ----------------------------------------------------------------------------------
def models_render(request: Request, me: Principal, q: str, form: FormState | None = None) -> Response:
    services = svc(request)
    hosts = media_hosts(services.settings)
    results: SearchOut | None = None
    search_error: str | None = None
    if q:
        try:
            results = services.model_browser.search(q)
        except MediagenError as exc:  # no token, Replicate away: said on the page, never a 500
            search_error = exc.message
    elif not services.settings.replicate_api_token:
        search_error = "Searching Replicate needs REPLICATE_API_TOKEN on the server."
    covers = {m.id: shown(m.cover_image_url, hosts) for m in results.models} if results else {}
    context = {
        "q": q,
        "results": results,
        "covers": covers,
        "search_error": search_error,
        "added": services.model_browser.added(),
        "manage": may_manage(me),
        "gallery_of": gallery_of,
    }
    form = form or FormState({**ADD_FIELDS, "q": q})
    page = render_forms(request, "models.html", context, {"": form}, me=me, section="models")
    return with_media_policy(page, hosts)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, me: Me, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    return models_render(request, me, q.strip())


# one model -------------------------------------------------------------------------------------------
def input_rows(preview: PreviewOut) -> list[dict[str, Any]]:
    """The inputs of the schema, in its order, as the page's table shows them."""
    props: dict[str, Any] = preview.input_schema.get("properties") or {}
    required = set(preview.input_schema.get("required") or [])
    mapped: dict[str, list[str]] = {}
    for field, target in sorted(preview.request_map.items()):
        mapped.setdefault(target, []).append(field)
    rows = []
    for name, prop in props.items():
        types = prop.get("type")
        types = [t for t in (types if isinstance(types, list) else [types]) if t and t != "null"]
        if name in preview.media_inputs:
            types = [f"{preview.media_inputs[name]} (URL or asset id)"]
        limits = [f"{k} {prop[k]}" for k in ("minimum", "maximum") if k in prop]
        rows.append(
            {
                "name": name,
                "type": " or ".join(str(t) for t in types) or "any",
                "enum": prop.get("enum"),
                "default": _shown_default(preview.defaults.get(name, prop.get("default"))),
                "limits": ", ".join(limits),
                "description": prop.get("description") or prop.get("title") or "",
                "required": name in required,
                "fields": mapped.get(name, []),
            }
        )
    return rows


def _shown_default(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


@router.get("/models/replicate/{owner}/{name}", response_class=HTMLResponse)
def model_page(request: Request, owner: NamePart, name: NamePart, me: Me) -> Response:
    services = svc(request)
    hosts = media_hosts(services.settings)
    try:
        preview = services.model_browser.preview(f"{owner}/{name}")
    except NotFound:
        raise not_found_page("model") from None
    files = [{"url": shown(f.url, hosts), "link": f.url, "kind": f.kind} for f in preview.example_files]
    entry: ModelEntry | None = services.catalog.get(preview.id)
    context = {
        "m": preview,
        "inputs": input_rows(preview),
        "files": files,
        "cover": shown(preview.cover_image_url, hosts),
        "example_input": json.dumps(preview.example_input, indent=2, ensure_ascii=False)
        if preview.example_input
        else None,
        "manage": may_manage(me),
        "entry": entry,
        "gallery": gallery_of(entry.kind) if entry else None,
    }
    form = FormState({**ADD_FIELDS, "model": preview.id})
    page = render_forms(request, "model_preview.html", context, {"": form}, me=me, section="models")
    return with_media_policy(page, hosts)


# add and remove ----------------------------------------------------------------------------------------
def build_add(f: Submission) -> AddModelIn:
    return AddModelIn.model_validate(
        {"model": f.text("model"), "version": f.optional("version"), "kind": f.optional("kind")}
    )


def act_add(f: Submission, body: AddModelIn) -> ModelEntry:
    return f.services.model_browser.add(f.me, body.model, body.version, body.kind)


def added(f: Submission, entry: ModelEntry) -> Response:
    gallery = gallery_of(entry.kind)
    message = f"Added {entry.id} ({entry.kind}) to the catalog."
    if gallery:
        message += f" It is in the model list of /generate/{gallery}."
    return f.redirect("/models", message)


ADD_MODEL = PageForm(
    fields=ADD_FIELDS,
    build=build_add,
    act=act_add,
    done=added,
    again=lambda f, form: models_render(f.request, f.me, str(f.values.get("q") or ""), form),
)


@router.post("/models/add", response_class=HTMLResponse)
def add_model(request: Request, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    if not may_manage(me):
        raise Forbidden("Only an admin who reaches every client may add models.")
    return handle_form(request, me, posted, ADD_MODEL)


@router.post("/models/{owner}/{name}/remove", response_class=HTMLResponse)
def remove_model(request: Request, owner: NamePart, name: NamePart, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    if not may_manage(me):
        raise Forbidden("Only an admin who reaches every client may remove models.")
    try:
        svc(request).model_browser.remove(me, f"{owner}/{name}")
    except NotFound:
        raise not_found_page("model") from None
    flash(request, f"Removed {owner}/{name} from the catalog; assets made with it stay.")
    return see_other("/models")
