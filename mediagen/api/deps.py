"""Annotated dependencies shared by every router (the one place routes get collaborators from)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from mediagen.auth.service import Principal
from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.errors import Forbidden, Unauthenticated
from mediagen.services import Services
from mediagen.storage.base import BlobStore

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API key from `mediagen keys create` or POST /api/keys.",
)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def services_of(request: Request) -> Services:
    """The container the composition root put on the app (`app.py`)."""
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


# Dependencies that do no I/O are `async def`: FastAPI runs sync ones on the thread pool, and
# each hop cost more than the work (bench/stream.py's range latency).
ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_database(services: ServicesDep) -> Database:
    return services.db


async def get_store(services: ServicesDep) -> BlobStore:
    return services.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
StoreDep = Annotated[BlobStore, Depends(get_store)]


def session_principal(request: Request, services: Services) -> Principal | None:
    """The signed-in web user, if the session cookie names a live server-side session."""
    session = request.scope.get("session")
    if not session or "sid" not in session:
        return None
    return services.auth.principal_for_session_token(session["sid"])


async def get_principal(
    request: Request,
    services: ServicesDep,
    api_key: Annotated[str | None, Security(api_key_header)] = None,
) -> Principal:
    # async, with the database reached on the thread pool only on a cache miss: this runs on
    # every request, and the pool hop cost more than the cached lookup.
    if api_key:
        principal = services.auth.cached_principal(api_key)
        if principal is None:
            principal = await run_in_threadpool(services.auth.authenticate_key, api_key)
        if principal is None:
            raise Unauthenticated("Invalid or revoked API key in X-API-Key")
        return principal
    session = request.scope.get("session")
    principal = None
    if session and "sid" in session:
        # Like keys: a session seen in the last second answers without I/O or a thread hop.
        principal = services.auth.cached_session_principal(session["sid"])
        if principal is None:
            principal = await run_in_threadpool(session_principal, request, services)
    if principal is not None:
        # A browser session may call the JSON API from our own pages; cookies ride along on
        # cross-site requests too, so unsafe methods must prove they come from our page.
        if request.method in UNSAFE_METHODS:
            sent = request.headers.get("x-csrf-token", "")
            expected = request.session.get("csrf", "")
            if not expected or not hmac.compare_digest(sent, expected):
                raise Forbidden("Missing or wrong X-CSRF-Token for a cookie-authenticated request")
        return principal
    raise Unauthenticated("Missing X-API-Key header: create a key with `mediagen keys create --name NAME`")


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("This route needs an admin API key")
    if principal.clients is not None:
        # Operator routes see across clients; a key limited to some clients must not.
        raise Forbidden("This route needs an admin API key that is not limited to some clients")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
