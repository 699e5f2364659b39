"""What every page shares: the templates, `render`, the error page and the route class that turns a
handler's exceptions into HTML with the pages' security headers.

Pages read through `request.app.state.services` with the signed-in user's Principal, so the client
scoping the services enforce applies here unchanged (another client's asset is a 404 page, never a
"forbidden" that would confirm it exists). Anything live (following a job, playing, generating) is
done by our own small scripts in `static/`, calling the JSON API with the session cookie and the
`X-CSRF-Token` header that `api/deps.py` requires for unsafe methods.

Handlers that touch the database are plain `def`s: FastAPI runs them in its threadpool, so the
synchronous services never block the event loop.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediagen.auth.service import Principal
from mediagen.campaigns.schemas import CampaignStatus
from mediagen.errors import MediagenError
from mediagen.vocabulary import ACTIVE, BY_GALLERY, KINDS, TERMINAL, Status, kind_info
from mediagen.web.errors import LoginRequired, PageError, no_such_address, page_error_for
from mediagen.web.filters import FILTERS
from mediagen.web.session import csrf_token, session_principal, svc

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

STATUSES: tuple[str, ...] = tuple(Status)
CAMPAIGN_STATUSES: tuple[str, ...] = get_args(CampaignStatus)

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


class PageRoute(APIRoute):
    """Turns the exceptions of page handlers into HTML (the app's own handlers answer JSON).

    Keeping this on the web routers means the API's error handling stays exactly as it is.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except LoginRequired as exc:
                response = RedirectResponse(f"/login?{urlencode({'next': exc.next_path})}", status_code=303)
            except (PageError, MediagenError, RequestValidationError) as exc:
                response = await run_in_threadpool(error_page, request, page_error_for(exc))
            return with_page_headers(response)

        return handler


def with_page_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.media_type == "text/html" or isinstance(response, RedirectResponse):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def page_router() -> APIRouter:
    """A router for one family of pages; `mediagen.web` joins them into one."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


# templates ------------------------------------------------------------------------------------
@functools.cache
def static_version() -> str:
    """A hash of the static files, appended to their URLs so browsers never run a stale script.

    Computed on the first page rendered, not on import."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def vocabulary_json() -> Markup:
    """The kinds and statuses, embedded in every page for `static/app.js` (which keeps no copy)."""
    data = {
        "kinds": {kind.value: info.public() for kind, info in KINDS.items()},
        "statuses": list(STATUSES),
        "active": [str(s) for s in ACTIVE],
        "terminal": [str(s) for s in Status if s in TERMINAL],
    }
    return htmlsafe_json_dumps(data)


def noun_of(kind: str) -> str:
    """One asset of a kind spelled as a string, in a sentence ("track"); '' for an unknown kind."""
    info = kind_info(kind)
    return info.noun if info else ""


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(FILTERS)
templates.env.globals.update(
    KINDS=KINDS,
    BY_GALLERY=BY_GALLERY,
    ACTIVE=ACTIVE,
    STATUSES=STATUSES,
    CAMPAIGN_STATUSES=CAMPAIGN_STATUSES,
    kinds_json=vocabulary_json(),
    noun_of=noun_of,
)
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True


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
        "static_version": static_version(),
        **context,
    }
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)


def error_page(request: Request, error: PageError) -> HTMLResponse:
    me = session_principal(request, svc(request)) if "session" in request.scope else None
    return render(
        request,
        "error.html",
        {"title": error.title, "message": error.message, "status": error.status_code},
        me=me,
        status_code=error.status_code,
    )


# addresses that name nothing -----------------------------------------------------------------
def wants_page(request: Request) -> bool:
    """A browser navigating (it accepts HTML) to anything outside the JSON API."""
    path = request.url.path
    if path == "/api" or path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


async def not_found(request: Request, exc: Exception) -> Response:
    """A path no route serves: the styled not-found page for a browser, the API's JSON for the rest.

    Starlette asks a handler registered for the status before the one for `HTTPException` (the
    API's, in `api/errors.py`), so this sees every 404 that routing and /static raise; domain
    `NotFound`s never get here. Its JSON is the API's own shape, so scripts see no difference."""
    if wants_page(request):
        page = await run_in_threadpool(error_page, request, no_such_address())
        return with_page_headers(page)
    http = exc if isinstance(exc, StarletteHTTPException) else StarletteHTTPException(404)
    detail = http.detail if isinstance(http.detail, str) else str(http.detail)
    return JSONResponse({"detail": detail}, status_code=404, headers=http.headers)


def install_not_found_page(app: FastAPI) -> None:
    app.add_exception_handler(404, not_found)
