"""Signing in and out."""

from __future__ import annotations

import math

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mediagen.errors import RateLimited, Unauthenticated
from mediagen.web.forms import Posted, posted_text
from mediagen.web.pages import page_router, render
from mediagen.web.session import (
    HOME,
    check_csrf,
    client_address,
    safe_next,
    see_other,
    session_principal,
    sign_in,
    sign_out,
    svc,
    user_agent,
)

router = page_router()


@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    """Music is what most people come for; the nav reaches the rest."""
    return see_other(HOME)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    if session_principal(request, svc(request)) is not None:
        return see_other(safe_next(next))
    return render(request, "login.html", {"next": safe_next(next), "email": "", "error": None}, me=None)


def locked_out_message(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    wait = "a minute" if minutes <= 1 else f"{minutes} minutes"
    return f"Too many failed sign-ins. For your account's safety, sign-in is paused: try again in {wait}."


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, posted: Posted) -> Response:
    # A login form posted from another site could sign a victim into the attacker's account.
    check_csrf(request, posted_text(posted, "csrf_token"))
    email, password = posted_text(posted, "email"), posted_text(posted, "password")
    next_path = safe_next(posted_text(posted, "next"))

    def again(error: str, status: int, headers: dict[str, str] | None = None) -> Response:
        context = {"next": next_path, "email": email, "error": error, "locked": status == 429}
        response = render(request, "login.html", context, me=None, status_code=status)
        response.headers.update(headers or {})
        return response

    if not email or not password:
        return again("Enter your email and password.", 422)
    try:
        _, token = svc(request).auth.sign_in(
            email,
            password,
            address=client_address(request),
            user_agent=user_agent(request),
            replace=request.session.get("sid"),
        )
    except RateLimited as exc:
        return again(locked_out_message(exc.retry_after), 429, {"Retry-After": str(exc.retry_after)})
    except Unauthenticated:
        return again("Wrong email or password.", 401)
    sign_in(request, token)
    return see_other(next_path)


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    sign_out(request)
    return see_other("/login")
