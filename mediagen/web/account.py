"""The signed-in user's account: who they are, changing their password, signing out elsewhere."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.errors import InvalidInput, RateLimited
from mediagen.web.auth import locked_out_message
from mediagen.web.forms import Posted, posted_text
from mediagen.web.pages import page_router, render
from mediagen.web.session import Me, check_csrf, client_address, flash, see_other, svc

router = page_router()


def account_render(
    request: Request,
    me: Principal,
    *,
    errors: Mapping[str, str] | None = None,
    form_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "sessions": svc(request).auth.sessions.count_for(me.user_id),
        "errors": errors or {},
        "form_error": form_error,
    }
    return render(request, "account.html", context, me=me, section="account", status_code=status_code)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, me: Me) -> Response:
    return account_render(request, me)


@router.post("/account/password", response_class=HTMLResponse)
def change_password(request: Request, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    current = posted_text(posted, "current_password")
    new = posted_text(posted, "new_password")
    confirm = posted_text(posted, "confirm_password")
    # Passwords are never sent back into the form: an error page shows empty fields.
    if not current:
        return account_render(
            request, me, errors={"current_password": "Enter your current password"}, status_code=422
        )
    if new != confirm:
        return account_render(
            request, me, errors={"confirm_password": "The two new passwords differ"}, status_code=422
        )
    try:
        ended = svc(request).auth.change_password(
            me,
            current=current,
            new=new,
            address=client_address(request),
            keep_session=request.session.get("sid"),
        )
    except RateLimited as exc:
        response = account_render(
            request, me, form_error=locked_out_message(exc.retry_after), status_code=429
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except InvalidInput as exc:
        field = exc.field or "new_password"
        message = (
            "That is not your current password"
            if field == "current_password"
            else f"This password {exc.message}"
        )
        return account_render(request, me, errors={field: message}, status_code=422)
    others = f" {ended} other session{'s' if ended != 1 else ''} signed out." if ended else ""
    flash(request, "Password changed." + others)
    return see_other("/account")


@router.post("/account/sessions/end-others", response_class=HTMLResponse)
def end_other_sessions(request: Request, me: Me, posted: Posted) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    ended = svc(request).auth.end_other_sessions(me, keep_session=request.session.get("sid"))
    flash(request, f"Signed out of {ended} other session{'s' if ended != 1 else ''}.")
    return see_other("/account")
