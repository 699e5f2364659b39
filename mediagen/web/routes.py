"""The web UI: server-rendered pages over the same services the JSON API uses.

Pages read through `request.app.state.services` with the signed-in user's Principal, so the client
scoping the services enforce applies here unchanged (another client's asset is a 404 page, never a
"forbidden" that would confirm it exists). Anything live (following a job, playing, generating) is
done by our own small scripts in `static/`, calling the JSON API with the session cookie and the
`X-CSRF-Token` header that `api/deps.py` requires for unsafe methods.

Handlers that touch the database are plain `def`s: FastAPI runs them in its threadpool, so the
synchronous services never block the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from mediagen.auth.schemas import KeyCreate, KeyCreated
from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.error_map import status_for
from mediagen.errors import MediagenError, NotFound
from mediagen.generations.presenters import asset_json
from mediagen.services import Services
from mediagen.vocabulary import KINDS, KindInfo

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

PAGE_SIZE = 24  # gallery cards per page: 4 rows of 6 at 1440 px, and a round number on phones
LIST_PAGE_SIZE = 50  # clients / campaigns tables
PICKER_LIMIT = 100  # options in a client/campaign/brief <select> (the API's page cap)
STATUSES = ("pending", "processing", "completed", "failed", "canceled")
CAMPAIGN_STATUSES = ("draft", "active", "archived")

# Gallery URL segment -> asset kind, and back. The galleries use the product's words (music),
# the asset pages the API's kinds (audio), so an asset URL maps 1:1 onto its API URL.
GALLERIES: dict[str, str] = {"music": "audio", "images": "image", "videos": "video"}
GALLERY_OF: dict[str, str] = {kind: seg for seg, kind in GALLERIES.items()}
NOUN: dict[str, str] = {"audio": "track", "image": "image", "video": "video"}

# Pages only ever load our own files; the JSON blobs pages embed are data, never executed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


# errors ---------------------------------------------------------------------------------------
class LoginRequired(Exception):
    """Raised by `require_user`; the page route turns it into a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """An error a page shows as a whole page (404, 403 …) rather than beside a field."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message


def not_found_page(what: str = "page") -> PageError:
    return PageError(404, "Not found", f"This {what} does not exist, or you do not have access to it.")


class PageRoute(APIRoute):
    """Turns the exceptions of page handlers into HTML (the app's own handlers answer JSON).

    Keeping this on the web router means the API's error handling stays exactly as it is.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except LoginRequired as exc:
                response = RedirectResponse(f"/login?{urlencode({'next': exc.next_path})}", status_code=303)
            except PageError as exc:
                response = await run_in_threadpool(
                    error_page, request, exc.status_code, exc.title, exc.message
                )
            except MediagenError as exc:
                status = status_for(exc)
                title, message = (
                    ("Not found", "This page does not exist, or you do not have access to it.")
                    if status == 404
                    else ("Something went wrong", exc.detail)
                )
                response = await run_in_threadpool(error_page, request, status, title, message)
            except RequestValidationError:
                # Only path/query values reach here (e.g. /assets/audio/abc): nothing by that name.
                response = await run_in_threadpool(
                    error_page, request, 404, "Not found", "There is no page at this address."
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if response.media_type == "text/html" or isinstance(response, RedirectResponse):
                response.headers.setdefault("Cache-Control", "no-store")
            return response

        return handler


# templates ------------------------------------------------------------------------------------
def _static_version() -> str:
    """A hash of the static files, appended to their URLs so browsers never run a stale script."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def fmt_datetime(value: datetime | str | None) -> str:
    """UTC on the server; app.js rewrites it in the reader's own time zone."""
    dt = _as_datetime(value)
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if dt else "—"


def iso(value: datetime | str | None) -> str:
    dt = _as_datetime(value)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else ""


def fmt_duration(seconds: float | None) -> str:
    """0:03 for players and cards; a tenth of a second shown below 10 s, where it matters."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def fmt_size(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_price(price: Mapping[str, Any] | None) -> str:
    usd = float((price or {}).get("usd", 0.0))
    if usd == 0:
        return "Free"
    per = (price or {}).get("per", "run")
    return f"${usd:g} per {per}"


def fmt_usd(value: float | None) -> str:
    value = value or 0.0
    if value == 0:
        return "$0"
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(
    datetime=fmt_datetime, iso=iso, duration=fmt_duration, filesize=fmt_size, price=fmt_price, usd=fmt_usd
)
templates.env.globals.update(
    GALLERY_OF=GALLERY_OF,
    GALLERIES=GALLERIES,
    KINDS=KINDS,
    NOUN=NOUN,
    STATUSES=STATUSES,
    CAMPAIGN_STATUSES=CAMPAIGN_STATUSES,
)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    services: Services = request.app.state.services
    me = session_principal(request, services) if "session" in request.scope else None
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "status": status_code},
        me=me,
        status_code=status_code,
    )


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    me: Principal | None,
    status_code: int = 200,
    section: str = "",
) -> HTMLResponse:
    ctx = {
        "me": me,
        "csrf": csrf_token(request),
        "flash": request.session.pop("flash", None),
        "section": section,
        "static_version": STATIC_VERSION,
        **context,
    }
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)


# session, sign-in, CSRF -----------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (also before sign-in, for the login form)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf(request: Request, sent: str) -> None:
    expected = request.session.get("csrf", "")
    if not expected or not sent or not hmac.compare_digest(sent.encode(), str(expected).encode()):
        raise PageError(
            403,
            "Form expired",
            "This form was open too long or came from another site. Go back, reload and try again.",
        )


def safe_next(value: str | None) -> str:
    """Only local paths: `next` comes from the URL, so anything else would be an open redirect."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/music"
    if any(ch in value for ch in "\r\n\t\\") or any(ord(ch) < 32 for ch in value):
        return "/music"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/music"
    return value


def require_user(request: Request) -> Principal:
    """The signed-in user for a page; otherwise off to sign in, coming back to this very URL."""
    principal = session_principal(request, request.app.state.services)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


Me = Annotated[Principal, Depends(require_user)]
CsrfField = Annotated[str, Form(alias="csrf_token")]


def svc(request: Request) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


def session_principal(request: Request, services: Services) -> Principal | None:
    """The signed-in user, if the session cookie carries one."""
    session = request.scope.get("session")
    return services.auth.principal_for_session(session.get("uid")) if session else None


def flash(request: Request, message: str) -> None:
    request.session["flash"] = message


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# small helpers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pager:
    number: int
    pages: int
    total: int
    prev_url: str | None
    next_url: str | None
    first: int  # 1-based index of the first row shown
    last: int


def pager(path: str, params: Mapping[str, Any], *, page: int, size: int, total: int) -> Pager:
    pages = max(1, math.ceil(total / size))
    keep = {k: v for k, v in params.items() if v not in (None, "") and k != "page"}

    def url(n: int) -> str:
        query = urlencode({**keep, **({"page": n} if n > 1 else {})})
        return f"{path}?{query}" if query else path

    first = (page - 1) * size + 1 if total else 0
    return Pager(
        number=page,
        pages=pages,
        total=total,
        # Past the end (an old link after deletions): "previous" leads back to the last real page.
        prev_url=url(min(page - 1, pages)) if page > 1 else None,
        next_url=url(page + 1) if page < pages else None,
        first=min(first, total),
        last=min(page * size, total),
    )


def blank(value: str | None) -> str | None:
    """Form and query values: '' means 'not given'."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def field_errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        name = ".".join(str(p) for p in err.get("loc", ())) or "form"
        msg = str(err.get("msg", "invalid value"))
        if err.get("type") == "missing":
            msg = "This field is required"
        elif err.get("type") == "string_pattern_mismatch":
            msg = "Use letters, digits and . _ : - (up to 64, starting with a letter or digit)"
        elif err.get("type") == "string_too_short":
            msg = "This field is required"
        out.setdefault(name, msg[0].upper() + msg[1:] if msg else msg)
    return out


def api_error_fields(exc: MediagenError) -> tuple[dict[str, str], str | None]:
    """An MediagenError as (errors beside fields, error for the whole form)."""
    if exc.field:
        message = exc.message
        return {exc.field: message[0].upper() + message[1:]}, None
    return {}, exc.detail


def options_with(rows: list[Any], selected: str | None, make: Callable[[str], Any]) -> list[Any]:
    """A select's rows plus the selected id when it is not among them (beyond the first page)."""
    if selected and all(r.id != selected for r in rows):
        try:
            return [make(selected), *rows]
        except MediagenError:
            return rows
    return rows


def name_of(getter: Callable[[Principal, str], Any], me: Principal, ident: str | None) -> Any:
    """A related record for display, or None when it is gone or outside the user's clients."""
    if not ident:
        return None
    try:
        return getter(me, ident)
    except MediagenError:
        return None


def card_items(services: Services, info: KindInfo, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows in the API's JSON shape (one derivations query per page), so cards and JS agree."""
    rows = list(rows)
    names = services.generations.derivation_names([r.id for r in rows])
    return [asset_json(r, info, names.get(r.id, [])) for r in rows]


# routes -----------------------------------------------------------------------------------------
router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    """Music is what most people come for; the nav reaches the rest."""
    return see_other("/music")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if session_principal(request, svc(request)) is not None:
        return see_other(safe_next(next))
    return render(request, "login.html", {"next": safe_next(next), "email": "", "error": None}, me=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    csrf: CsrfField = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    # A login form posted from another site could sign a victim into the attacker's account.
    check_csrf(request, csrf)
    principal = svc(request).auth.authenticate_password(email, password) if email and password else None
    if principal is None:
        return render(
            request,
            "login.html",
            {
                "next": safe_next(next),
                "email": email,
                "error": "Wrong email or password."
                if email and password
                else "Enter your email and password.",
            },
            me=None,
            status_code=400,
        )
    # A fresh session: nothing from before sign-in (including the old CSRF token) carries over.
    request.session.clear()
    request.session["uid"] = principal.user_id
    request.session["csrf"] = secrets.token_urlsafe(32)
    return see_other(safe_next(next))


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request, csrf: CsrfField = "") -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return see_other("/login")


# generate ---------------------------------------------------------------------------------------
def filing_options(services: Services, me: Principal) -> dict[str, Any]:
    clients, _ = services.campaigns.list_clients(me, q=None, limit=PICKER_LIMIT, offset=0)
    campaigns, _ = services.campaigns.list_campaigns(
        me, client_id=None, status=None, q=None, limit=PICKER_LIMIT, offset=0
    )
    briefs, _ = services.campaigns.list_briefs(
        me, client_id=None, campaign_id=None, limit=PICKER_LIMIT, offset=0
    )
    return {
        "clients": sorted(clients, key=lambda c: c.name.lower()),
        "campaigns": sorted(campaigns, key=lambda c: c.name.lower()),
        "briefs": sorted(briefs, key=lambda b: b.title.lower()),
    }


@router.get("/generate", response_class=HTMLResponse)
def generate_default() -> RedirectResponse:
    return see_other("/generate/music")


@router.get("/generate/{gallery}", response_class=HTMLResponse)
def generate_page(
    request: Request,
    gallery: str,
    me: Me,
    model: str | None = None,
    client_id: str | None = None,
    campaign_id: str | None = None,
    brief_id: str | None = None,
) -> Response:
    kind = GALLERIES.get(gallery)
    if kind is None:
        raise not_found_page()
    services = svc(request)
    models = [m.model_dump(mode="json") for m in services.router.models(kind)]
    available = [m["id"] for m in models if m["available"]]
    selected = (
        model
        if model in available
        else next((m["id"] for m in models if m["default"]), available[0] if available else None)
    )
    filing = filing_options(services, me)
    campaign = name_of(services.campaigns.get_campaign, me, blank(campaign_id))
    brief = name_of(services.campaigns.get_brief, me, blank(brief_id))
    chosen = {
        "client_id": blank(client_id)
        or (campaign.client_id if campaign else None)
        or (brief.client_id if brief else None),
        "campaign_id": campaign.id if campaign else (brief.campaign_id if brief else None),
        "brief_id": brief.id if brief else None,
    }
    if chosen["client_id"] is None and me.clients is not None and len(me.clients) == 1:
        chosen["client_id"] = next(iter(me.clients))
    return render(
        request,
        "generate.html",
        {
            "kind": kind,
            "gallery": gallery,
            "info": KINDS[kind],
            "models": models,
            "selected_model": selected,
            "chosen": chosen,
            **filing,
        },
        me=me,
        section="generate",
    )


# assets -----------------------------------------------------------------------------------------
def load_asset(request: Request, me: Principal, kind: str, gen_id: int) -> tuple[KindInfo, dict[str, Any]]:
    info = KINDS.get(kind)
    if info is None:
        raise not_found_page()
    services = svc(request)
    row = services.generations.get(me, kind, gen_id)  # 404 (an HTML page) outside the user's clients
    return info, asset_json(row, info, list(services.generations.derivations(row.id)))


@router.get("/assets/{kind}/{gen_id}", response_class=HTMLResponse)
def asset_page(request: Request, kind: str, gen_id: int, me: Me) -> Response:
    info, asset = load_asset(request, me, kind, gen_id)
    services = svc(request)
    entry = services.catalog.get(asset["model_id"])
    context = {
        "info": info,
        "kind": kind,
        "asset": asset,
        "gallery": GALLERY_OF[kind],
        "model_title": entry.title if entry else asset["model_id"],
        "model_label": entry.label if entry else None,
        "client": name_of(services.campaigns.get_client, me, asset["client_id"]),
        "campaign": name_of(services.campaigns.get_campaign, me, asset["campaign_id"]),
        "brief": name_of(services.campaigns.get_brief, me, asset["brief_id"]),
        "input_titles": {k: v.get("title", k) for k, v in (entry.properties if entry else {}).items()},
        "media_inputs": entry.media_inputs if entry else {},
        "server_now": iso(datetime.now(UTC)),
    }
    return render(request, "asset.html", context, me=me, section=GALLERY_OF[kind])


@router.get("/assets/{kind}/{gen_id}/card", response_class=HTMLResponse)
def asset_card(request: Request, kind: str, gen_id: int, me: Me) -> Response:
    """One gallery card, for cards of running jobs that refresh themselves in place."""
    info, asset = load_asset(request, me, kind, gen_id)
    return templates.TemplateResponse(request, "card.html", {"a": asset, "kind": kind, "info": info})


# galleries --------------------------------------------------------------------------------------
def gallery_handler(gallery: str) -> Callable[..., Response]:
    kind = GALLERIES[gallery]
    info = KINDS[kind]

    def handler(
        request: Request,
        me: Me,
        client_id: str | None = None,
        campaign_id: str | None = None,
        brief_id: str | None = None,
        status: str | None = None,
        model: str | None = None,
        collection: str | None = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        page: str | None = None,
    ) -> Response:
        services = svc(request)
        filters = {
            "client_id": blank(client_id),
            "campaign_id": blank(campaign_id),
            "brief_id": blank(brief_id),
            "status": blank(status) if blank(status) in STATUSES else None,
            "model_id": blank(model),
            "collection": blank(collection),
        }
        search = blank(q)
        number = int(page) if page and page.isdigit() and int(page) > 0 else 1
        rows, total = services.generations.list(
            me, kind, filters=filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE, q=search
        )
        params = {
            "client_id": filters["client_id"],
            "campaign_id": filters["campaign_id"],
            "brief_id": filters["brief_id"],
            "status": filters["status"],
            "model": filters["model_id"],
            "collection": filters["collection"],
            "q": search,
        }
        clients, _ = services.campaigns.list_clients(me, q=None, limit=PICKER_LIMIT, offset=0)
        campaigns, _ = services.campaigns.list_campaigns(
            me, client_id=filters["client_id"], status=None, q=None, limit=PICKER_LIMIT, offset=0
        )
        briefs, _ = services.campaigns.list_briefs(
            me,
            client_id=filters["client_id"],
            campaign_id=filters["campaign_id"],
            limit=PICKER_LIMIT,
            offset=0,
        )
        clients = options_with(clients, filters["client_id"], lambda i: services.campaigns.get_client(me, i))
        campaigns = options_with(
            campaigns, filters["campaign_id"], lambda i: services.campaigns.get_campaign(me, i)
        )
        briefs = options_with(briefs, filters["brief_id"], lambda i: services.campaigns.get_brief(me, i))
        return render(
            request,
            "gallery.html",
            {
                "kind": kind,
                "info": info,
                "gallery": gallery,
                "items": card_items(services, info, rows),
                "pager": pager(f"/{gallery}", params, page=number, size=PAGE_SIZE, total=total),
                "params": params,
                "filtered": any(v for v in params.values()),
                "clients": clients,
                "campaigns": campaigns,
                "briefs": briefs,
                "models": services.catalog.list(kind),
            },
            me=me,
            section=gallery,
        )

    handler.__name__ = f"gallery_{gallery}"
    handler.__doc__ = (
        f"The {info.label.lower()} gallery: newest first, filters in the URL, {PAGE_SIZE} a page."
    )
    return handler


for _gallery in GALLERIES:
    router.add_api_route(
        f"/{_gallery}",
        gallery_handler(_gallery),
        methods=["GET"],
        response_class=HTMLResponse,
        name=f"gallery_{_gallery}",
    )


# clients ----------------------------------------------------------------------------------------
def page_number(page: str | None) -> int:
    return int(page) if page and page.isdigit() and int(page) > 0 else 1


def clients_context(request: Request, me: Principal, page: int) -> dict[str, Any]:
    rows, total = svc(request).campaigns.list_clients(
        me, q=None, limit=LIST_PAGE_SIZE, offset=(page - 1) * LIST_PAGE_SIZE
    )
    return {"clients": rows, "pager": pager("/clients", {}, page=page, size=LIST_PAGE_SIZE, total=total)}


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, me: Me, page: str | None = None) -> Response:
    return render(
        request,
        "clients.html",
        {**clients_context(request, me, page_number(page)), "form": {}, "errors": {}, "form_error": None},
        me=me,
        section="clients",
    )


@router.post("/clients", response_class=HTMLResponse)
def create_client(
    request: Request,
    me: Me,
    csrf: CsrfField = "",
    id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    form = {"id": id, "name": name, "description": description}
    errors: dict[str, str] = {}
    form_error = None
    try:
        body = sc.ClientCreate(id=blank(id), name=name.strip(), description=blank(description))
        client = svc(request).campaigns.create_client(me, body)
    except ValidationError as exc:
        errors = field_errors(exc)
    except MediagenError as exc:
        errors, form_error = api_error_fields(exc)
    else:
        flash(request, f"Created client {client.name}.")
        return see_other(f"/clients/{client.id}")
    return render(
        request,
        "clients.html",
        {**clients_context(request, me, 1), "form": form, "errors": errors, "form_error": form_error},
        me=me,
        section="clients",
        status_code=422 if errors else 400,
    )


def client_context(request: Request, me: Principal, client_id: str) -> dict[str, Any]:
    services = svc(request)
    client = services.campaigns.get_client(me, client_id)
    campaigns, total = services.campaigns.list_campaigns(
        me, client_id=client.id, status=None, q=None, limit=LIST_PAGE_SIZE, offset=0
    )
    return {
        "client": client,
        "campaigns": campaigns,
        "campaign_total": total,
        "stats": services.campaigns.stats(me, "client", client.id),
    }


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def client_page(request: Request, client_id: str, me: Me) -> Response:
    ctx = client_context(request, me, client_id)
    form = {"name": ctx["client"].name, "description": ctx["client"].description or ""}
    return render(
        request,
        "client.html",
        {**ctx, "form": form, "errors": {}, "form_error": None},
        me=me,
        section="clients",
    )


@router.post("/clients/{client_id}", response_class=HTMLResponse)
def update_client(
    request: Request,
    client_id: str,
    me: Me,
    csrf: CsrfField = "",
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    form = {"name": name, "description": description}
    errors: dict[str, str] = {}
    form_error = None
    try:
        body = sc.ClientUpdate(name=name.strip(), description=blank(description))
        svc(request).campaigns.update_client(me, client_id, body)
    except ValidationError as exc:
        errors = field_errors(exc)
    except MediagenError as exc:
        if isinstance(exc, NotFound):
            raise
        errors, form_error = api_error_fields(exc)
    else:
        flash(request, "Saved.")
        return see_other(f"/clients/{client_id}")
    return render(
        request,
        "client.html",
        {**client_context(request, me, client_id), "form": form, "errors": errors, "form_error": form_error},
        me=me,
        section="clients",
        status_code=422,
    )


# campaigns --------------------------------------------------------------------------------------
def campaigns_context(request: Request, me: Principal, client_id: str | None, page: int) -> dict[str, Any]:
    services = svc(request)
    rows, total = services.campaigns.list_campaigns(
        me, client_id=client_id, status=None, q=None, limit=LIST_PAGE_SIZE, offset=(page - 1) * LIST_PAGE_SIZE
    )
    clients, _ = services.campaigns.list_clients(me, q=None, limit=PICKER_LIMIT, offset=0)
    clients = sorted(clients, key=lambda c: c.name.lower())
    names = {c.id: c.name for c in clients}
    for row in rows:
        if row.client_id not in names:
            found = name_of(services.campaigns.get_client, me, row.client_id)
            names[row.client_id] = found.name if found else row.client_id
    return {
        "campaigns": rows,
        "clients": clients,
        "client_names": names,
        "client_filter": client_id,
        "pager": pager("/campaigns", {"client_id": client_id}, page=page, size=LIST_PAGE_SIZE, total=total),
    }


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, me: Me, client_id: str | None = None, page: str | None = None
) -> Response:
    client_id = blank(client_id)
    ctx = campaigns_context(request, me, client_id, page_number(page))
    return render(
        request,
        "campaigns.html",
        {**ctx, "form": {"client_id": client_id or "", "status": "active"}, "errors": {}, "form_error": None},
        me=me,
        section="campaigns",
    )


@router.post("/campaigns", response_class=HTMLResponse)
def create_campaign(
    request: Request,
    me: Me,
    csrf: CsrfField = "",
    client_id: Annotated[str, Form()] = "",
    id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    goal: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "active",
) -> Response:
    check_csrf(request, csrf)
    form = {"client_id": client_id, "id": id, "name": name, "goal": goal, "status": status}
    errors: dict[str, str] = {}
    form_error = None
    try:
        body = sc.CampaignCreate(
            client_id=client_id.strip(), id=blank(id), name=name.strip(), goal=blank(goal), status=status
        )  # type: ignore[arg-type]
        campaign = svc(request).campaigns.create_campaign(me, body)
    except ValidationError as exc:
        errors = field_errors(exc)
    except MediagenError as exc:
        errors, form_error = api_error_fields(exc)
    else:
        flash(request, f"Created campaign {campaign.name}.")
        return see_other(f"/campaigns/{campaign.id}")
    return render(
        request,
        "campaigns.html",
        {**campaigns_context(request, me, None, 1), "form": form, "errors": errors, "form_error": form_error},
        me=me,
        section="campaigns",
        status_code=422,
    )


CAMPAIGN_STRIP = 4  # cards per kind on a campaign page; the full gallery is one click away


def campaign_context(request: Request, me: Principal, campaign_id: str) -> dict[str, Any]:
    services = svc(request)
    campaign = services.campaigns.get_campaign(me, campaign_id)
    strips = []
    for kind, info in KINDS.items():
        rows, total = services.generations.list(
            me, kind, filters={"campaign_id": campaign.id}, limit=CAMPAIGN_STRIP, offset=0
        )
        strips.append(
            {
                "kind": kind,
                "info": info,
                "gallery": GALLERY_OF[kind],
                "total": total,
                "cards": card_items(services, info, rows),
            }
        )
    briefs, _ = services.campaigns.list_briefs(
        me, client_id=None, campaign_id=campaign.id, limit=PICKER_LIMIT, offset=0
    )
    return {
        "campaign": campaign,
        "client": name_of(services.campaigns.get_client, me, campaign.client_id),
        "stats": services.campaigns.stats(me, "campaign", campaign.id),
        "strips": strips,
        "briefs": briefs,
    }


def campaign_render(
    request: Request,
    me: Principal,
    campaign_id: str,
    *,
    form: Mapping[str, Any] | None = None,
    brief_form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    brief_errors: Mapping[str, str] | None = None,
    form_error: str | None = None,
    brief_error: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = campaign_context(request, me, campaign_id)
    campaign = ctx["campaign"]
    return render(
        request,
        "campaign.html",
        {
            **ctx,
            "form": form or {"name": campaign.name, "goal": campaign.goal or "", "status": campaign.status},
            "brief_form": brief_form or {},
            "errors": errors or {},
            "brief_errors": brief_errors or {},
            "form_error": form_error,
            "brief_error": brief_error,
        },
        me=me,
        section="campaigns",
        status_code=status_code,
    )


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: str, me: Me) -> Response:
    return campaign_render(request, me, campaign_id)


@router.post("/campaigns/{campaign_id}", response_class=HTMLResponse)
def update_campaign(
    request: Request,
    campaign_id: str,
    me: Me,
    csrf: CsrfField = "",
    name: Annotated[str, Form()] = "",
    goal: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    form = {"name": name, "goal": goal, "status": status}
    try:
        body = sc.CampaignUpdate(name=name.strip(), goal=blank(goal), status=status or None)  # type: ignore[arg-type]
        svc(request).campaigns.update_campaign(me, campaign_id, body)
    except ValidationError as exc:
        return campaign_render(request, me, campaign_id, form=form, errors=field_errors(exc), status_code=422)
    except MediagenError as exc:
        if isinstance(exc, NotFound):
            raise
        errors, form_error = api_error_fields(exc)
        return campaign_render(
            request, me, campaign_id, form=form, errors=errors, form_error=form_error, status_code=422
        )
    flash(request, "Saved.")
    return see_other(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/briefs", response_class=HTMLResponse)
def create_brief(
    request: Request,
    campaign_id: str,
    me: Me,
    csrf: CsrfField = "",
    title: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    form = {"title": title, "text": text}
    try:
        body = sc.BriefCreate(campaign_id=campaign_id, title=title.strip(), text=text.strip())
        brief = svc(request).campaigns.create_brief(me, body)
    except ValidationError as exc:
        return campaign_render(
            request, me, campaign_id, brief_form=form, brief_errors=field_errors(exc), status_code=422
        )
    except MediagenError as exc:
        if isinstance(exc, NotFound):
            raise
        errors, form_error = api_error_fields(exc)
        return campaign_render(
            request,
            me,
            campaign_id,
            brief_form=form,
            brief_errors=errors,
            brief_error=form_error,
            status_code=422,
        )
    flash(request, f"Added brief {brief.title}.")
    return see_other(f"/campaigns/{campaign_id}#briefs")


# API keys ---------------------------------------------------------------------------------------
def keys_render(
    request: Request,
    me: Principal,
    *,
    created: Any = None,
    form: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    form_error: str | None = None,
    status_code: int = 200,
) -> Response:
    services = svc(request)
    keys = services.auth.list_keys(user_id=None if me.is_admin else me.user_id)
    clients, _ = services.campaigns.list_clients(me, q=None, limit=PICKER_LIMIT, offset=0)
    return render(
        request,
        "keys.html",
        {
            "keys": keys,
            "clients": sorted(clients, key=lambda c: c.name.lower()),
            "created": created,
            "form": form or {"clients": []},
            "errors": errors or {},
            "form_error": form_error,
        },
        me=me,
        section="keys",
        status_code=status_code,
    )


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, me: Me) -> Response:
    return keys_render(request, me)


@router.post("/keys", response_class=HTMLResponse)
def create_key_page(
    request: Request,
    me: Me,
    csrf: CsrfField = "",
    name: Annotated[str, Form()] = "",
    clients: Annotated[list[str] | None, Form()] = None,
) -> Response:
    check_csrf(request, csrf)
    form = {"name": name, "clients": clients or []}
    try:
        body = KeyCreate(name=name, clients=clients or None)
        row, token = svc(request).auth.create_key_for(me, name=body.name, clients=body.clients)
        created = KeyCreated(
            id=row.id, name=row.name, key=token, clients=row.clients, created_at=row.created_at
        )
    except ValidationError as exc:
        return keys_render(request, me, form=form, errors=field_errors(exc), status_code=422)
    except MediagenError as exc:
        errors, form_error = api_error_fields(exc)
        return keys_render(request, me, form=form, errors=errors, form_error=form_error, status_code=422)
    # Rendered, not redirected: the token is shown this once and never stored in the (signed,
    # readable) session cookie.
    return keys_render(request, me, created=created, status_code=201)


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key_page(request: Request, key_id: str, me: Me, csrf: CsrfField = "") -> Response:
    check_csrf(request, csrf)
    if not svc(request).auth.revoke_key(key_id, user_id=None if me.is_admin else me.user_id):
        raise not_found_page("key")
    flash(request, "Key revoked; it stopped working at once.")
    return see_other("/keys")


STATIC_VERSION = _static_version()


def mount_web(app: FastAPI) -> None:
    """Adds the pages and /static to the app (called from api/routes/__init__.py)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
