"""The domain's one error family. Nothing here knows about HTTP.

Services raise these; `api/errors.py` maps each class to a status code and the
`{"detail", "errors": [{field, message}]}` body in one table, the web pages render them with one
helper, and the CLI prints `message`. Every other exception the package defines (engine, media,
storage, download errors) derives from `MediagenError` too, so a caller can catch the family.
"""

from __future__ import annotations


class MediagenError(Exception):
    """Something a person can act on. `field` names the input at fault, where there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def detail(self) -> str:
        """The whole message as shown to a caller (`message` is what goes beside the field)."""
        return self.message

    def __str__(self) -> str:
        return self.detail


class NotFound(MediagenError):
    """No such record, or one the caller may not see (the two are never told apart)."""


class InvalidInput(MediagenError):
    """An input is missing or wrong; `field` names it as the caller sent it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)

    @property
    def detail(self) -> str:
        return f"{self.field}: {self.message}"


class MalformedRequest(MediagenError):
    """The request cannot be read at all (not JSON, not a prediction), so no field can be named."""


class Unauthenticated(MediagenError):
    """No credentials, or ones we do not accept (a key, a webhook signature or token)."""


class Forbidden(MediagenError):
    """The caller is known but may not do this (used only where hiding existence is not needed)."""


class Conflict(MediagenError):
    """The request is fine but the record's state does not allow it (already exists, finished)."""


class PayloadTooLarge(MediagenError):
    """A body over the configured limit."""


class RateLimited(MediagenError):
    """Too many requests; `retry_after` is how many seconds until one more is accepted."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(MediagenError):
    """A dependency is not ready or not reachable; trying again after `retry_after` s may work."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderRefused(MediagenError):
    """A model provider turned the job down for a reason that is not the caller's input (a bad
    token, an empty account). The generation was kept, failed, so the reason stays visible.

    `payment` says the account ran out of credit (the provider answered 402).
    """

    def __init__(self, message: str, *, kind: str, generation_id: int, payment: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.generation_id = generation_id
        self.payment = payment


def invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(field, message)


def not_found(what: str, ident: object) -> NotFound:
    return NotFound(f"{what} {ident!r} not found")


__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "MalformedRequest",
    "MediagenError",
    "NotFound",
    "PayloadTooLarge",
    "ProviderRefused",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "invalid",
    "not_found",
]
