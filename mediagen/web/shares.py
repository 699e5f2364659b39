"""The review page a share link opens (`/s/{token}`), for someone without an account, and what the
team's pages need to make and list links.

The page is public: it reads no session and writes none (no cookie is set for a reviewer), and its
only credential is the token in its URL. So every answer under /s/ says `Referrer-Policy:
no-referrer` (nothing the page loads or links to learns the token) and `X-Robots-Tag: noindex`.
A revoked or expired link is a 410 page saying so, an unknown one the plain 404 page; both are
decided on this very request (`ShareService.open`). The bytes, comments and verdicts the page uses
are served under the same token by `api/routes/share_access.py`; `static/share.js` adds the
players' waveforms, the reviewer's name (kept in localStorage) and the posts.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from mediagen.auth.service import Principal
from mediagen.errors import MediagenError
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.studio.shares import PAGE_CAP, ShareGone, comment_json
from mediagen.studio.tables import Share
from mediagen.vocabulary import KINDS, Kind, Status
from mediagen.web.errors import PageError, page_error_for
from mediagen.web.pages import SECURITY_HEADERS, static_version, templates
from mediagen.web.session import svc

SHARE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}
REVIEW_LABELS = {"draft": "Draft", "in_review": "In review", "approved": "Approved", "rejected": "Rejected"}
EXPIRY_CHOICES = (
    (3600, "1 hour"),
    (86400, "1 day"),
    (7 * 86400, "7 days"),
    (30 * 86400, "30 days"),
    (90 * 86400, "90 days"),
)
DEFAULT_EXPIRY = 7 * 86400


def public_render(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A page for someone who is not signed in, rendered without touching the session (`render`
    would make a CSRF token, and with it a cookie, for every reviewer)."""
    ctx = {
        "me": None,
        "csrf": "",
        "flash": None,
        "section": "",
        "static_version": static_version(),
        **context,
    }
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)


def not_found_page(request: Request, error: PageError) -> HTMLResponse:
    context = {"title": error.title, "message": error.message, "status": error.status_code}
    return public_render(request, "error.html", context, error.status_code)


def gone_page(request: Request, gone: ShareGone) -> HTMLResponse:
    return public_render(request, "share_gone.html", {"reason": gone.reason, "when": gone.when}, 410)


class SharePageRoute(APIRoute):
    """Errors as public pages (410 for a dead link), and the headers a page with a secret URL needs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except ShareGone as exc:
                response = await run_in_threadpool(gone_page, request, exc)
            except (PageError, MediagenError, RequestValidationError) as exc:
                error = page_error_for(exc)
                if error.status_code == 404:
                    error = PageError(
                        404,
                        "Not found",
                        "There is no review link at this address. Check that the whole link was copied.",
                    )
                response = await run_in_threadpool(not_found_page, request, error)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.update(SHARE_HEADERS)
            return response

        return handler


router = APIRouter(route_class=SharePageRoute, include_in_schema=False)


# the review page --------------------------------------------------------------------------------
def asset_view(services: Services, base: str, row: Generation, derived: set[str]) -> dict[str, Any]:
    """One shared asset as the page shows it, with its URLs under the token."""
    here = f"{base}/{row.kind}/{row.id}"
    done = row.status == Status.COMPLETED
    return {
        "id": row.id,
        "kind": row.kind,
        "title": row.title or row.prompt,
        "prompt": row.prompt if row.title else None,
        "status": row.status,
        "done": done,
        "duration": row.duration,
        "width": row.width,
        "height": row.height,
        "review_status": row.review_status,
        "review_label": REVIEW_LABELS.get(row.review_status, row.review_status),
        "data_url": f"{here}/data" if done else None,
        "waveform_url": f"{here}/waveform" if "waveform" in derived else None,
        "thumbnail_url": f"{here}/thumbnail" if "thumbnail" in derived else None,
        "poster_url": f"{here}/poster" if "poster" in derived else None,
        "comments_url": f"{here}/comments",
        "review_url": f"{here}/review",
        "comments": [comment_json(c) for c in services.comments.list_for(row.id)],
    }


def heading(services: Services, share: Share, rows: list[Generation]) -> str:
    if share.label:
        return share.label
    if share.target == "campaign":
        name = services.shares.campaign_name(share)
        return f"{name or 'Campaign'}: for review"
    if share.target == "take_group":
        return f"Takes of “{rows[0].title or rows[0].prompt}”" if rows else "Takes"
    if share.target == "plan":
        return "Campaign kit: for sign-off"
    return (rows[0].title or rows[0].prompt) if rows else "For review"


@router.get("/s/{token}", response_class=HTMLResponse)
def share_page(request: Request, token: str) -> Response:
    services = svc(request)
    share = services.shares.open(token)
    rows, total = services.shares.assets(share)
    derived = services.shares.derivation_names([r.id for r in rows])
    base = f"/s/{token}"
    groups = []
    for kind, info in KINDS.items():
        items = [asset_view(services, base, r, derived[r.id]) for r in rows if r.kind == kind]
        if items:
            groups.append({"kind": str(kind), "info": info, "assets": items})
    context = {
        "heading": heading(services, share, rows),
        "share": share,
        "groups": groups,
        "shown": len(rows),
        "total": total,
        "cap": PAGE_CAP,
        "review_labels": REVIEW_LABELS,
    }
    return public_render(request, "share.html", context)


# what the team's pages use ----------------------------------------------------------------------
def expiry_choices(request: Request) -> list[dict[str, Any]]:
    """The link lifetimes the share dialog offers: the usual ones up to this server's limit."""
    most = svc(request).settings.share_max_seconds
    choices = [(s, label) for s, label in EXPIRY_CHOICES if s <= most] or [(most, f"{most // 60} minutes")]
    default = DEFAULT_EXPIRY if any(s == DEFAULT_EXPIRY for s, _ in choices) else choices[-1][0]
    return [{"seconds": s, "label": label, "selected": s == default} for s, label in choices]


def campaign_links(services: Services, me: Principal, campaign_id: str) -> list[dict[str, Any]]:
    """The working links filed under a campaign, for its page's "Review links" panel."""
    rows, _ = services.shares.list_visible(me, campaign_id=campaign_id, active=True, limit=100)
    return [link_view(r.model_dump(mode="json")) for r in rows]


def link_view(link: dict[str, Any]) -> dict[str, Any]:
    """A link as the panels list it: what it opens, in words."""
    target = link["target"]
    if "kind" in target:
        info = KINDS.get(Kind(target["kind"])) if target["kind"] in KINDS else None
        what = f"{(info.noun if info else target['kind']).capitalize()} #{target['id']}"
        href = f"/assets/{target['kind']}/{target['id']}"
    elif "take_group" in target:
        what, href = f"Takes {target['take_group']}", None
    elif "plan_id" in target:
        what, href = f"Kit of plan #{target['plan_id']}", f"/plans/{target['plan_id']}/kit"
    else:
        what, href = "The whole campaign", None
    return {**link, "what": what, "href": href}


templates.env.globals.update(share_expiry_choices=expiry_choices)
