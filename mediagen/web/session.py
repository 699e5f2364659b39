"""The signed-in user, the CSRF token and the redirects that pages share.

The session cookie (signed, but readable by whoever holds it) carries a CSRF token, a flash message
and `sid`: the token of a server-side session (`mediagen.auth.sessions`). Who is signed in is only
ever read from the database row that token names, so ending the row signs the cookie out everywhere.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from mediagen.auth.service import Principal
from mediagen.services import Services
from mediagen.web.errors import LoginRequired, PageError

HOME = "/music"  # music is what most people come for; the nav reaches the rest


def svc(request: Request) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


def session_principal(request: Request, services: Services) -> Principal | None:
    """The signed-in user, if the session cookie names a live server-side session."""
    session = request.scope.get("session")
    return services.auth.principal_for_session_token(session.get("sid")) if session else None


def client_address(request: Request) -> str | None:
    """The address sign-in attempts are counted against. uvicorn takes it from `X-Forwarded-For`
    when the proxy is trusted (`FORWARDED_ALLOW_IPS`, by default only this host), so behind a proxy
    elsewhere that setting decides whether this is the client's address or the proxy's."""
    return request.client.host if request.client else None


def user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


def require_user(request: Request) -> Principal:
    """The signed-in user for a page; otherwise off to sign in, coming back to this very URL."""
    principal = session_principal(request, svc(request))
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


Me = Annotated[Principal, Depends(require_user)]


def sign_in(request: Request, token: str) -> None:
    """A fresh cookie for a new server-side session (`AuthService.sign_in` made it and ended the one
    before): nothing from before sign-in, the old CSRF token included, carries over."""
    request.session.clear()
    request.session["sid"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """Ends the server-side session (so copies of the cookie stop working too) and clears the cookie."""
    svc(request).auth.end_session(request.session.get("sid"))
    request.session.clear()


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
        return HOME
    if any(ch in value for ch in "\r\n\t\\") or any(ord(ch) < 32 for ch in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return HOME
    return value


def flash(request: Request, message: str) -> None:
    request.session["flash"] = message


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
