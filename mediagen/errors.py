"""Errors services raise for the caller to see; the API maps them to HTTP, the CLI prints them."""

from __future__ import annotations


class ApiError(Exception):
    """A failure with an HTTP status and a message a person can act on; `field` names the input."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.extra = extra or {}
        self.status_code = status_code
        self.detail = detail
        self.field = field
        self.headers = headers


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, f"{what} {ident!r} not found")


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, f"{field}: {message}", field=field)
