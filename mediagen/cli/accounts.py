"""Users and API keys, managed on the server machine against its database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from mediagen.auth.service import MAX_EXPIRES_DAYS, AuthService
from mediagen.cli.common import COMMAND_LINE, _auth, _fail, keys_app, users_app
from mediagen.errors import MediagenError, NotFound


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[str, typer.Option(help="admin or member")] = "member",
    client: Annotated[
        list[str] | None, typer.Option("--client", help="Limit to this client (repeat)")
    ] = None,
) -> None:
    """Create a user (optionally limited to some clients)."""
    from mediagen.auth.service import AuthError

    try:
        user = _auth().create_user(email=email, password=password, role=role, clients=client or None)
    except AuthError as exc:
        raise typer.BadParameter(str(exc)) from exc
    print(f"Created {user.role} {user.email} (id {user.id})")


def _unknown_clients(auth: AuthService, wanted: list[str]) -> tuple[list[str], list[str]]:
    """(the ids in `wanted` that name no client, every client id there is)."""
    from sqlalchemy import select

    from mediagen.campaigns.tables import Client

    with auth.db.read() as s:
        known = list(s.scalars(select(Client.id).order_by(Client.id)))
    return [c for c in dict.fromkeys(wanted) if c not in known], known


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option()],
    user: Annotated[str | None, typer.Option(help="Owner's email; default the first admin")] = None,
    client: Annotated[
        list[str] | None, typer.Option("--client", help="Limit to this client (repeat); it must exist")
    ] = None,
    expires_days: Annotated[
        int | None,
        typer.Option(
            "--expires-days",
            min=1,
            max=MAX_EXPIRES_DAYS,
            help="The key stops working this many days from now (default: never)",
        ),
    ] = None,
) -> None:
    """Create an API key; the key is printed alone on the last line."""
    auth = _auth()
    if user:
        owner = auth.get_user_by_email(user)
        if owner is None:
            raise typer.BadParameter(f"no user with email {user}")
    else:
        owner = auth.first_admin()
        if owner is None:
            raise typer.BadParameter(
                "no admin user yet: run `mediagen serve` once or `mediagen users create`"
            )
    if client:
        unknown, known = _unknown_clients(auth, client)
        if unknown:
            listed = ", ".join(known[:20]) + (" …" if len(known) > 20 else "") if known else "none yet"
            _fail(
                f"no client with id {', '.join(unknown)} (clients: {listed}); create it first "
                "(POST /api/clients or the web UI's Clients page) or fix the id"
            )
    try:
        row, token = auth.create_key(
            user_id=owner.id, name=name, clients=client or None, expires_days=expires_days
        )
    except MediagenError as exc:
        _fail(str(exc))
    print(
        f"Created key {row.id} for {owner.email}"
        + (f" limited to {', '.join(client)}" if client else "")
        + (f", expires {_when(row.expires_at)}" if row.expires_at else "")
    )
    print(token)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id."""
    try:
        _auth().revoke_key_for(COMMAND_LINE, key_id)
    except NotFound:
        _fail(f"no key with id {key_id} (`mediagen keys list` shows them)")
    print(f"Revoked {key_id}")


@keys_app.command("list")
def keys_list() -> None:
    """All keys (never their secrets), newest first."""
    now = datetime.now(UTC)
    for k in _auth().keys_visible_to(COMMAND_LINE):
        if k.revoked_at:
            state = "revoked"
        elif k.expires_at is not None and k.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        expires = _when(k.expires_at) if k.expires_at else "never"
        print(f"{k.id}  {k.prefix}…  {state:8}  {k.name}  clients={k.clients or 'all'}  expires={expires}")


@users_app.command("reset-password")
def users_reset_password(
    email: Annotated[str, typer.Option()],
    password: Annotated[
        str | None, typer.Option(help="The new password (policy-checked); default: a random one, printed")
    ] = None,
) -> None:
    """Set a new password, sign the user out everywhere and lift a sign-in lock-out."""
    from mediagen.auth.service import AuthError

    try:
        new, ended = _auth().reset_password(email=email, password=password)
    except AuthError as exc:
        raise typer.BadParameter(str(exc)) from exc
    print(f"Password reset for {email.strip().lower()}; {ended} session(s) signed out")
    if password is None:
        print(new)
