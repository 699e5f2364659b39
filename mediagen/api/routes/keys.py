"""API keys: create (the token is shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES
from mediagen.auth.schemas import KeyCreate, KeyCreated, KeyList, KeyOut

router = APIRouter(prefix="/api/keys", tags=["keys"], responses=ERROR_RESPONSES)


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, services: ServicesDep, principal: PrincipalDep) -> KeyCreated:
    """Create a key for the calling user; a limited caller can only make keys as limited or narrower.
    With `expires_days` the key stops working that many days from now."""
    row, token = services.auth.create_key_for(
        principal, name=body.name, clients=body.clients, expires_days=body.expires_days
    )
    return KeyCreated.of(row, token)


@router.get("", response_model=KeyList)
def list_keys(services: ServicesDep, principal: PrincipalDep) -> KeyList:
    """The keys the caller may manage: an admin without a client limit sees every key; a caller
    limited to some clients sees only keys that stay within those clients; a member sees only their
    own."""
    rows = services.auth.keys_visible_to(principal)
    return KeyList(keys=[KeyOut.model_validate(r) for r in rows], count=len(rows), total=len(rows))


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    """Revoke a key the caller may see (see the list); it stops working at once. Any other: 404."""
    services.auth.revoke_key_for(principal, key_id)
    return Response(status_code=204)
