"""API keys: the keys the user may manage (`AuthService.keys_visible_to`), making one, and revoking one."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.schemas import KeyCreate, KeyCreated
from mediagen.auth.service import Principal
from mediagen.errors import NotFound
from mediagen.web.errors import not_found_page
from mediagen.web.forms import FormState, PageForm, Posted, Submission, form_route, posted_text, render_forms
from mediagen.web.listing import by_name, client_choices
from mediagen.web.pages import page_router
from mediagen.web.session import Me, check_csrf, flash, see_other, svc

router = page_router()


def keys_render(
    request: Request, me: Principal, form: FormState | None = None, created: KeyCreated | None = None
) -> Response:
    services = svc(request)
    form = form or FormState({"clients": [], "expires_days": ""}, status_code=201 if created else 200)
    context = {
        "keys": services.auth.keys_visible_to(me),
        "clients": by_name(client_choices(services, me)),
        "created": created,
        "now": datetime.now(UTC),
    }
    return render_forms(request, "keys.html", context, {"": form}, me=me, section="keys")


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, me: Me) -> Response:
    return keys_render(request, me)


def create_key(f: Submission, body: KeyCreate) -> KeyCreated:
    row, token = f.services.auth.create_key_for(
        f.me, name=body.name, clients=body.clients, expires_days=body.expires_days
    )
    return KeyCreated.of(row, token)


def build_key(f: Submission) -> KeyCreate:
    return KeyCreate.model_validate(
        {
            "name": f.values["name"],
            "clients": f.values["clients"] or None,
            "expires_days": f.optional("expires_days"),
        }
    )


CREATE_KEY = PageForm(
    fields={"name": "", "clients": [], "expires_days": ""},
    build=build_key,
    act=create_key,
    # Rendered, not redirected: the token is shown this once and never stored in the (signed,
    # readable) session cookie.
    done=lambda f, created: keys_render(f.request, f.me, created=created),
    again=lambda f, form: keys_render(f.request, f.me, form),
)
form_route(router, "/keys", "create_key", CREATE_KEY)


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(request: Request, key_id: str, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    try:
        svc(request).auth.revoke_key_for(me, key_id)
    except NotFound:
        raise not_found_page("key") from None
    flash(request, "Key revoked; it stopped working at once.")
    return see_other("/keys")
