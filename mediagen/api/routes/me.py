"""The calling user: who they are, and changing their own password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES, ErrorOut

router = APIRouter(prefix="/api/me", tags=["me"], responses=ERROR_RESPONSES)

THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorOut,
        "description": "Too many wrong passwords for this account or from this address; "
        "`Retry-After` says when to try again",
    }
}


class MeOut(BaseModel):
    user_id: str
    email: str
    role: str
    clients: list[str] | None = Field(description="The clients this user can reach; null for every client")
    key_id: str | None = Field(description="The API key this request used; null for a browser session")


class PasswordChange(BaseModel):
    # No whitespace stripping: a password is taken exactly as typed.
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=4096)
    new_password: str = Field(
        max_length=4096,
        description="At least 10 characters, not a common password, not containing your email's name, "
        "and hard enough to guess (zxcvbn score 3 or more); a 422 names what is missing",
    )


class PasswordChanged(BaseModel):
    sessions_ended: int = Field(description="How many of your other browser sessions were signed out")


@router.get("", response_model=MeOut)
async def me(principal: PrincipalDep) -> MeOut:
    """The user this request acts for (the API key's owner, or the signed-in browser's user)."""
    return MeOut(
        user_id=principal.user_id,
        email=principal.email,
        role=principal.role,
        clients=sorted(principal.clients) if principal.clients is not None else None,
        key_id=principal.key_id,
    )


@router.post("/password", response_model=PasswordChanged, responses=THROTTLED)
def change_password(
    body: PasswordChange, request: Request, services: ServicesDep, principal: PrincipalDep
) -> PasswordChanged:
    """Change your own password. The current password is required: a wrong one is a 422 on
    `current_password` and counts as a failed sign-in (so repeated guesses are locked out with a 429).
    The new one must pass the password policy. Every browser session of yours is signed out except
    the one making this request; API keys keep working."""
    keep = request.session.get("sid") if principal.key_id is None and "session" in request.scope else None
    ended = services.auth.change_password(
        principal,
        current=body.current_password,
        new=body.new_password,
        address=request.client.host if request.client else None,
        keep_session=keep,
    )
    return PasswordChanged(sessions_ended=ended)
