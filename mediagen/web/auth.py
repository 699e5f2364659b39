"""Signing in and out."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mediagen.web.forms import Posted, posted_text
from mediagen.web.pages import page_router, render
from mediagen.web.session import HOME, check_csrf, safe_next, see_other, session_principal, sign_in, svc

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


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, posted: Posted) -> Response:
    # A login form posted from another site could sign a victim into the attacker's account.
    check_csrf(request, posted_text(posted, "csrf_token"))
    email, password = posted_text(posted, "email"), posted_text(posted, "password")
    next_path = safe_next(posted_text(posted, "next"))
    principal = svc(request).auth.authenticate_password(email, password) if email and password else None
    if principal is None:
        error = "Wrong email or password." if email and password else "Enter your email and password."
        context = {"next": next_path, "email": email, "error": error}
        return render(request, "login.html", context, me=None, status_code=400)
    sign_in(request, principal)
    return see_other(next_path)


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    request.session.clear()
    return see_other("/login")
