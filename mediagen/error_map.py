"""The one table from the domain's errors to HTTP status codes, used by both edges: the JSON API
(`api/errors.py` adds the body and headers) and the web pages (which render an error page)."""

from __future__ import annotations

from mediagen.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedRequest,
    MediagenError,
    NotFound,
    PayloadTooLarge,
    ProviderRefused,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

# The one map from the domain's errors to HTTP. The first matching class wins (most specific first).
STATUS_FOR: tuple[tuple[type[MediagenError], int], ...] = (
    (MalformedRequest, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (RateLimited, 429),
    (ProviderRefused, 502),
    (Unavailable, 503),
)


def status_for(exc: MediagenError) -> int:
    if isinstance(exc, ProviderRefused) and exc.payment:
        return 503  # the account ran out of credit: the service, not the gateway, is unavailable
    for cls, status in STATUS_FOR:
        if isinstance(exc, cls):
            return status
    return 500  # an engine/storage/media error that no use case turned into one of the above
