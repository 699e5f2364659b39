"""API keys: the keys the user may manage (`AuthService.keys_visible_to`), making one, and revoking one.

Making a key posts, then redirects (303) to the list, which shows the new token once: a reload
of either page never makes a second key. The token cannot travel in the URL (it would sit in the
history and in logs), and the session cookie is signed but readable, so it carries the token only
masked: XORed with a pad drawn from the key's stored hash (`seal`). Whoever holds the cookie alone
cannot unmask it (the pad needs the hash, which never leaves the database, and the token itself is
32 random bytes to guess); the page reads the hash, unmasks, checks it, and drops the entry, so it
is shown once, within `NEW_KEY_SECONDS`. Nothing is held in the process, so any API process may
answer the redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.schemas import KeyCreate, KeyCreated
from mediagen.auth.service import Principal, hash_token
from mediagen.auth.tables import ApiKey
from mediagen.errors import NotFound
from mediagen.web.errors import not_found_page
from mediagen.web.forms import FormState, PageForm, Posted, Submission, form_route, posted_text, render_forms
from mediagen.web.listing import by_name, client_choices
from mediagen.web.pages import page_router
from mediagen.web.session import Me, check_csrf, flash, see_other, svc

router = page_router()

NEW_KEY = "new_key"  # the session entry: {"id", "sealed", "at"}
NEW_KEY_SECONDS = 600  # a redirect takes well under a second; a stale entry shows nothing


def _pad(key_hash: str, length: int) -> bytes:
    return hashlib.shake_256(b"mediagen web new key\0" + key_hash.encode()).digest(length)


def seal(token: str, key_hash: str) -> str:
    """The token masked for the session cookie (see the module docstring)."""
    raw = token.encode()
    return base64.urlsafe_b64encode(
        bytes(a ^ b for a, b in zip(raw, _pad(key_hash, len(raw)), strict=True))
    ).decode()


def unseal(sealed: str, key_hash: str) -> str | None:
    """The token back, or None when it does not belong to the key with this hash."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        token = bytes(a ^ b for a, b in zip(raw, _pad(key_hash, len(raw)), strict=True)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return token if hmac.compare_digest(hash_token(token), key_hash) else None


def take_new_key(request: Request, keys: list[ApiKey]) -> KeyCreated | None:
    """The key made just before the redirect here, with its token, once (the entry is dropped)."""
    entry: Any = request.session.pop(NEW_KEY, None)
    if not isinstance(entry, dict) or time.time() - float(entry.get("at", 0)) > NEW_KEY_SECONDS:
        return None
    row = next((k for k in keys if k.id == entry.get("id")), None)
    token = unseal(str(entry.get("sealed", "")), row.key_hash) if row is not None else None
    return KeyCreated.of(row, token) if row is not None and token is not None else None


def keys_render(request: Request, me: Principal, form: FormState | None = None) -> Response:
    services = svc(request)
    keys = services.auth.keys_visible_to(me)
    created = take_new_key(request, keys)
    form = form or FormState({"clients": [], "expires_days": ""})
    context = {
        "keys": keys,
        "clients": by_name(client_choices(services, me)),
        "created": created,
        "now": datetime.now(UTC),
    }
    return render_forms(request, "keys.html", context, {"": form}, me=me, section="keys")


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, me: Me) -> Response:
    return keys_render(request, me)


def create_key(f: Submission, body: KeyCreate) -> tuple[ApiKey, str]:
    return f.services.auth.create_key_for(
        f.me, name=body.name, clients=body.clients, expires_days=body.expires_days
    )


def key_made(f: Submission, made: tuple[ApiKey, str]) -> Response:
    """Post/Redirect/Get: the list shows the token once, and reloading it makes nothing."""
    row, token = made
    f.request.session[NEW_KEY] = {"id": row.id, "sealed": seal(token, row.key_hash), "at": time.time()}
    return see_other("/keys")


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
    done=key_made,
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
