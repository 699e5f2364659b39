"""What a review link opens, served under its token to someone without an account: the bytes and
derived files of the assets it shares, and the reviewer's comments and verdicts.

Every request looks the token up again (`ShareService.open`): a revoked or expired link answers
410 at once, an unknown one 404, and an asset outside the link (another id, kind or tenant) 404.

The reviewer's posts carry no session and so no CSRF token. A page on another site could still
make the reviewer's browser post, so they must be `application/json` (a cross-site form cannot
send that without a CORS preflight, which is never granted) and come from our own origin (the
`Origin` header, or `Sec-Fetch-Site: same-origin` where a browser sends no Origin). They are rate
limited per link.

These routes belong to the review page (web/shares.py) rather than the public API, so they are left
out of the OpenAPI document; tests/studio/test_shares.py probes their scoping.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from mediagen.api.deps import ServicesDep, services_of
from mediagen.api.errors import error_response
from mediagen.api.media import blob_response
from mediagen.errors import MediagenError, NotFound
from mediagen.studio.share_schemas import ReviewerComment, ReviewerVerdict
from mediagen.studio.shares import ShareGone, comment_json
from mediagen.vocabulary import KINDS, MAX_ID, Kind, ReviewStatus, Status

# The token is in the URL: nothing served under it may pass it on, or be indexed.
SHARE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
# Bytes never change under a key, but the link may stop working: revalidate on every use (a 304
# while the link works is cheap) instead of replaying a cached copy after a revoke.
REVALIDATE = "private, no-cache"
DERIVED = ("waveform", "thumbnail", "poster")

# Unbounded here: a token of the wrong length is an unknown link (404), like any other.
Token = Annotated[str, Path()]
AssetId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site_refusal(request: Request) -> JSONResponse | None:
    """Why a reviewer's post is refused before anything is read (415 or 403), or None."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return JSONResponse({"detail": "Send the body as application/json"}, status_code=415)
    sent = request.headers.get("origin")
    if sent is None:
        same = request.headers.get("sec-fetch-site", "").lower() == "same-origin"
    else:
        public_url = services_of(request).settings.public_url
        ours = {_origin(str(request.base_url)), *((_origin(public_url),) if public_url else ())}
        same = sent.rstrip("/").lower() in ours
    if not same:
        return JSONResponse({"detail": "Review posts are accepted only from the review page"}, 403)
    return None


class ShareAccessRoute(APIRoute):
    """Checks a post's origin first, answers a dead link 410, and marks every answer not to be
    passed on or indexed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            refused = cross_site_refusal(request) if request.method == "POST" else None
            if refused is not None:
                response: Response = refused
            else:
                try:
                    response = await original(request)
                except ShareGone as exc:
                    response = JSONResponse({"detail": exc.detail, "gone": exc.reason}, status_code=410)
                except MediagenError as exc:
                    response = error_response(exc)
            response.headers.update(SHARE_HEADERS)
            return response

        return handler


router = APIRouter(route_class=ShareAccessRoute, include_in_schema=False)


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise NotFound("Nothing at this address in this review link")
    return Kind(kind)


def _media(path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """GET and HEAD (players probe with it) on one media route."""

    def register(endpoint: Callable[..., Response]) -> Callable[..., Response]:
        router.add_api_route(path, endpoint, methods=["GET", "HEAD"], response_class=Response)
        return endpoint

    return register


@_media("/s/{token}/{kind}/{gen_id}/data")
def shared_data(
    token: Token, kind: str, gen_id: AssetId, request: Request, services: ServicesDep
) -> Response:
    shares = services.shares
    row = shares.asset(shares.open(token), _kind(kind), gen_id)
    if row.status != Status.COMPLETED or not row.blob_key:
        raise NotFound(f"This {row.kind} is not ready yet")
    return blob_response(
        request,
        services.store,
        row.blob_key,
        content_type=row.content_type or "application/octet-stream",
        cache_control=REVALIDATE,
    )


def _register_derived(name: str) -> None:
    @_media(f"/s/{{token}}/{{kind}}/{{gen_id}}/{name}")
    def shared_derivation(
        token: Token, kind: str, gen_id: AssetId, request: Request, services: ServicesDep
    ) -> Response:
        shares = services.shares
        found = shares.derivation(shares.open(token), _kind(kind), gen_id, name)
        return blob_response(
            request, services.store, found.blob_key, content_type=found.content_type, cache_control=REVALIDATE
        )


for _name in DERIVED:
    _register_derived(_name)


@router.post("/s/{token}/{kind}/{gen_id}/comments", status_code=201)
def reviewer_comment(
    token: Token, kind: str, gen_id: AssetId, body: ReviewerComment, services: ServicesDep
) -> JSONResponse:
    """A reviewer's comment on a shared asset, at a moment of its audio or video or on the whole."""
    remark = services.shares.remark(token, _kind(kind), gen_id, body)
    made = services.comments.add_as_reviewer(
        remark.row.id, at=remark.at, text=remark.text, author_name=remark.name, share_id=remark.share.id
    )
    return JSONResponse(comment_json(made), status_code=201)


@router.post("/s/{token}/{kind}/{gen_id}/review")
def reviewer_verdict(
    token: Token, kind: str, gen_id: AssetId, body: ReviewerVerdict, services: ServicesDep
) -> JSONResponse:
    """A reviewer approves or rejects a shared asset; recorded under their name and this link."""
    verdict = services.shares.verdict(token, _kind(kind), gen_id, body)
    services.review.set_status(
        verdict.row.id,
        ReviewStatus(verdict.status),
        actor_user=None,
        actor_name=verdict.name,
        share_id=verdict.share.id,
    )
    return JSONResponse({"kind": verdict.row.kind, "id": verdict.row.id, "review_status": verdict.status})
