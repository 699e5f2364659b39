"""The command groups, and what every command shares: settings, logging, the local database."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import NoReturn

import typer

from mediagen.auth.service import AuthService, Principal
from mediagen.config import Settings

app = typer.Typer(
    help="Mediagen: generate music, images and video for campaigns, and keep every asset.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
storage_app = typer.Typer(help="Blob storage backends.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(storage_app, name="storage")


def _settings() -> Settings:
    return Settings()


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("huey", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _prepare(settings: Settings) -> None:
    """Migrations, then the first admin (printed once, on first start only)."""
    from mediagen.auth.service import AuthService
    from mediagen.db.migrate import upgrade
    from mediagen.db.session import Database

    settings.ensure_dirs()
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    try:
        created = AuthService(db).bootstrap_admin()
    finally:
        db.dispose()
    if created:
        email, password, key = created
        print("First start: created an admin account. Save these now; they are not shown again.")
        print(f"Admin email: {email}")
        print(f"Admin password: {password}")
        print(f"Admin API key: {key}", flush=True)


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit 1: what went wrong and what to do, never a traceback."""
    print(f"Error: {message}", file=sys.stderr)
    raise typer.Exit(1)


def _existing_database(settings: Settings) -> str:
    """The URL of the Mediagen database the local commands (keys, users) work on.

    They never make a new, empty one: run from the wrong folder, that would hide the real one
    (an empty key list, "no admin user yet"). Only `db upgrade`, `serve` and `worker` create it.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mediagen.db.migrate import current

    url = settings.resolved_database_url
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if settings.database_url:
        source = f"MEDIAGEN_DATABASE_URL is {shown}"
    elif settings.data_dir == Settings.model_fields["data_dir"].default:
        source = f"MEDIAGEN_DATA_DIR is not set: the data dir is ./data of the current folder {Path.cwd()}"
    else:
        source = f"MEDIAGEN_DATA_DIR is {settings.data_dir}"
    hint = (
        "Set MEDIAGEN_DATA_DIR to the server's data dir (the folder holding mediagen.db) or "
        "MEDIAGEN_DATABASE_URL to its database; to start a new one, run `mediagen db upgrade`."
    )
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database)).resolve()
        if not path.is_file():
            _fail(f"no Mediagen database at {path} ({source}). {hint}")
    try:
        revision = current(url)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig if orig is not None else exc).splitlines()[0]
        _fail(f"cannot open the database {shown} ({source}): {reason}. {hint}")
    if revision is None:
        _fail(f"the database {shown} has no Mediagen tables ({source}). {hint}")
    return url


def _auth() -> AuthService:
    from mediagen.db.migrate import upgrade
    from mediagen.db.session import Database

    url = _existing_database(_settings())
    upgrade(url)
    return AuthService(Database(url))


# The command line reads the database itself, so it acts as an admin without a client limit.
COMMAND_LINE = Principal(user_id="", email="(command line)", role="admin", clients=None)
