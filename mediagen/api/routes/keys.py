"""API keys: create (the token is shown once), list, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES
from mediagen.errors import invalid, not_found

router = APIRouter(prefix="/api/keys", tags=["keys"], responses=ERROR_RESPONSES)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    clients: list[str] | None = Field(default=None, description="Limit the key to these client ids")


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    prefix: str
    clients: list[str] | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(BaseModel):
    id: str
    name: str
    key: str = Field(description="The secret token; store it now, it cannot be shown again")
    clients: list[str] | None
    created_at: datetime


class KeyList(BaseModel):
    keys: list[KeyOut]
    count: int
    total: int


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, services: ServicesDep, principal: PrincipalDep) -> KeyCreated:
    """Create a key for the calling user; a limited caller can only make keys as limited or narrower."""
    clients = body.clients
    if principal.clients is not None:
        if clients is None:
            clients = sorted(principal.clients)
        elif not set(clients) <= principal.clients:
            raise invalid("clients", "a key cannot reach clients its creator cannot see")
    if clients is not None and not clients:
        raise invalid("clients", "give at least one client id, or omit the field for all clients")
    row, token = services.auth.create_key(user_id=principal.user_id, name=body.name, clients=clients)
    return KeyCreated(id=row.id, name=row.name, key=token, clients=row.clients, created_at=row.created_at)


@router.get("", response_model=KeyList)
def list_keys(services: ServicesDep, principal: PrincipalDep) -> KeyList:
    """Keys of the calling user (admins see every user's keys)."""
    rows = services.auth.list_keys(user_id=None if principal.is_admin else principal.user_id)
    return KeyList(keys=[KeyOut.model_validate(r) for r in rows], count=len(rows), total=len(rows))


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Revoke a key; it stops working at once."""
    ok = services.auth.revoke_key(key_id, user_id=None if principal.is_admin else principal.user_id)
    if not ok:
        raise not_found("key", key_id)
    return Response(status_code=204)
