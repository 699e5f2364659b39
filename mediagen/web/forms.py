"""The one way a page handles a posted form.

Every form goes the same way: check the CSRF token, build the request body (a pydantic model, the
same the JSON API validates) from the posted fields, call a service, and then either go on (flash
and redirect, or render) or show the page again with the form as it was sent, each error beside its
field, and 422. A page declares a `PageForm` with those steps and `form_route` registers it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from mediagen.auth.service import Principal
from mediagen.errors import MediagenError, NotFound
from mediagen.services import Services
from mediagen.web.listing import blank
from mediagen.web.pages import render
from mediagen.web.session import Me, check_csrf, flash, see_other, svc

Body = TypeVar("Body")
Result = TypeVar("Result")

# Each field the form posts, with its value when it is missing or empty; a list reads every value.
Fields = Mapping[str, str | list[str]]


async def posted_form(request: Request) -> FormData:
    return await request.form()


Posted = Annotated[FormData, Depends(posted_form)]


def posted_text(posted: FormData, name: str, default: str = "") -> str:
    """One posted field; missing or empty is `default` (as FastAPI's `Form()` parameters read)."""
    value = posted.get(name)
    return value if isinstance(value, str) and value else default


def posted_values(posted: FormData, fields: Fields) -> dict[str, Any]:
    return {
        name: [v for v in posted.getlist(name) if isinstance(v, str)]
        if isinstance(default, list)
        else posted_text(posted, name, default)
        for name, default in fields.items()
    }


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


def error_fields(exc: MediagenError) -> tuple[dict[str, str], str | None]:
    """A domain error as (errors beside fields, error for the whole form)."""
    if exc.field:
        message = exc.message
        return {exc.field: message[0].upper() + message[1:]}, None
    return {}, exc.detail


@dataclass(frozen=True)
class FormState:
    """A form as a page shows it: its values, the errors beside fields and one for the whole form."""

    values: Mapping[str, Any]
    errors: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None
    status_code: int = 200

    def context(self, prefix: str = "") -> dict[str, Any]:
        """The template's names for it: `form`, `errors`, `form_error` (`brief_form` … with a prefix)."""
        return {
            f"{prefix}form": self.values,
            f"{prefix}errors": self.errors,
            f"{prefix}form_error": self.error,
        }


def render_forms(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    forms: Mapping[str, FormState],
    *,
    me: Principal,
    section: str,
) -> Response:
    """A page with forms, each under its prefix ('' for `form`, `errors`, `form_error`); a form sent
    back with errors sets the status."""
    ctx = dict(context)
    for prefix, form in forms.items():
        ctx.update(form.context(prefix))
    status = max(form.status_code for form in forms.values())
    return render(request, template, ctx, me=me, section=section, status_code=status)


@dataclass(frozen=True)
class Submission:
    """One posted form: who sent it, to which URL, with which values."""

    request: Request
    me: Principal
    values: Mapping[str, Any]

    @property
    def services(self) -> Services:
        return svc(self.request)

    def path(self, name: str) -> str:
        """A value from the URL's path, e.g. the id of the record the form edits."""
        return str(self.request.path_params[name])

    def text(self, name: str) -> str:
        return str(self.values[name]).strip()

    def optional(self, name: str) -> str | None:
        return blank(self.values[name])

    def redirect(self, url: str, message: str) -> RedirectResponse:
        """Done: say so on the next page, and go there (303, so a reload does not post again)."""
        flash(self.request, message)
        return see_other(url)


@dataclass(frozen=True)
class PageForm(Generic[Body, Result]):
    fields: Fields
    build: Callable[[Submission], Body]  # the request body; a ValidationError shows beside fields
    act: Callable[[Submission, Body], Result]  # the service call
    done: Callable[[Submission, Result], Response]
    again: Callable[[Submission, FormState], Response]  # the page with the form and its errors
    # The form edits the record in the URL: when that is gone, the page is a 404, not a form error.
    missing_is_page: bool = False
    error_status: int = 422  # for an error that names no field


def handle_form(request: Request, me: Principal, posted: FormData, form: PageForm[Any, Any]) -> Response:
    check_csrf(request, posted_text(posted, "csrf_token"))
    sent = Submission(request, me, posted_values(posted, form.fields))
    try:
        result = form.act(sent, form.build(sent))
    except ValidationError as exc:
        return form.again(sent, FormState(sent.values, field_errors(exc), None, 422))
    except MediagenError as exc:
        if form.missing_is_page and isinstance(exc, NotFound):
            raise
        errors, error = error_fields(exc)
        return form.again(sent, FormState(sent.values, errors, error, 422 if errors else form.error_status))
    return form.done(sent, result)


def form_route(router: APIRouter, path: str, name: str, form: PageForm[Any, Any]) -> None:
    """POST `path` handles `form` (a plain `def`: services run in the threadpool)."""

    def handler(request: Request, me: Me, posted: Posted) -> Response:
        return handle_form(request, me, posted, form)

    handler.__name__ = name
    router.add_api_route(path, handler, methods=["POST"], response_class=HTMLResponse, name=name)
