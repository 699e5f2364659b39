"""What a page does instead of answering: sign in first, or show an error as a whole page.

Every error a page shows goes through `page_error_for`, so a domain error looks the same whichever
page raised it: its status comes from `mediagen.error_map`, and a missing record (or one outside
the user's clients: the two are never told apart) is the generic not-found page.
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError

from mediagen.error_map import status_for
from mediagen.errors import MediagenError


class LoginRequired(Exception):
    """Raised by `require_user`; the page route turns it into a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageError(Exception):
    """An error a page shows as a whole page (404, 403 …) rather than beside a field."""

    def __init__(self, status_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message


def not_found_page(what: str = "page") -> PageError:
    return PageError(404, "Not found", f"This {what} does not exist, or you do not have access to it.")


def no_such_address() -> PageError:
    """A path or query value that names nothing (e.g. /assets/audio/abc)."""
    return PageError(404, "Not found", "There is no page at this address.")


def page_error_for(exc: Exception) -> PageError:
    """Any error a page handler raised, as the page that shows it."""
    if isinstance(exc, PageError):
        return exc
    if isinstance(exc, MediagenError):
        status = status_for(exc)
        return not_found_page() if status == 404 else PageError(status, "Something went wrong", exc.detail)
    if isinstance(exc, RequestValidationError):
        # Only path/query values reach here: nothing by that name.
        return no_such_address()
    raise TypeError(f"not a page error: {exc!r}")
