"""The `mediagen` command: run the service, manage users and keys, generate from the shell."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from mediagen.auth.service import AuthService
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
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")


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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (MEDIAGEN_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MEDIAGEN_PORT)")] = None,
    workers: Annotated[
        bool | None,
        typer.Option(
            "--workers/--no-workers", help="Run job workers in this process (default MEDIAGEN_RUN_CONSUMER)"
        ),
    ] = None,
) -> None:
    """Run the API, the web UI and (by default) the job workers."""
    import uvicorn

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    settings = Settings(**overrides)
    _configure_logging(settings)
    _prepare(settings)
    from mediagen.app import create_app

    application = create_app(settings, run_workers=workers)
    print(
        f"Mediagen listening on http://{settings.host}:{settings.port} (data in {settings.data_dir})",
        flush=True,
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker() -> None:
    """Run job workers only (scale out next to one or more `serve --no-workers`)."""
    from mediagen.app import worker_host
    from mediagen.services import build_services

    settings = _settings()
    _configure_logging(settings)
    _prepare(settings)
    host = worker_host(build_services(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    host.start()
    print(f"Mediagen worker running with {settings.workers} threads", flush=True)
    stop.wait()
    host.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    from mediagen.db.migrate import current, upgrade

    settings = _settings()
    settings.ensure_dirs()
    upgrade(settings.resolved_database_url)
    print(f"Database at revision {current(settings.resolved_database_url)}")


def _auth() -> AuthService:
    from mediagen.db.migrate import upgrade
    from mediagen.db.session import Database

    settings = _settings()
    settings.ensure_dirs()
    upgrade(settings.resolved_database_url)
    return AuthService(Database(settings.resolved_database_url))


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


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option()],
    user: Annotated[str | None, typer.Option(help="Owner's email; default the first admin")] = None,
    client: Annotated[
        list[str] | None, typer.Option("--client", help="Limit to this client (repeat)")
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
    row, token = auth.create_key(user_id=owner.id, name=name, clients=client or None)
    print(f"Created key {row.id} for {owner.email}" + (f" limited to {', '.join(client)}" if client else ""))
    print(token)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id."""
    if not _auth().revoke_key(key_id):
        print(f"No key with id {key_id}", file=sys.stderr)
        raise typer.Exit(1)
    print(f"Revoked {key_id}")


@keys_app.command("list")
def keys_list() -> None:
    """All keys (never their secrets)."""
    for k in _auth().list_keys(user_id=None):
        state = "revoked" if k.revoked_at else "active"
        print(f"{k.id}  {k.prefix}…  {state:8}  {k.name}  clients={k.clients or 'all'}")


def _client(url: str | None, key: str | None) -> httpx.Client:
    settings = _settings()
    base = url or settings.api_url or f"http://{settings.host}:{settings.port}"
    token = key or settings.api_key
    if not token:
        raise typer.BadParameter("no API key: pass --key or set MEDIAGEN_API_KEY")
    return httpx.Client(base_url=base, headers={"X-API-Key": token}, timeout=httpx.Timeout(30.0, connect=5.0))


def _parse_param(raw: str) -> tuple[str, Any]:
    if "=" not in raw:
        raise typer.BadParameter(f"--param {raw!r}: expected key=value")
    k, v = raw.split("=", 1)
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v


@app.command()
def generate(
    kind: Annotated[str, typer.Argument(help="audio, image or video")],
    prompt: Annotated[str, typer.Argument()],
    model: Annotated[str | None, typer.Option(help="Model id, e.g. synth/music")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign id")] = None,
    client: Annotated[str | None, typer.Option(help="Client id")] = None,
    brief: Annotated[str | None, typer.Option(help="Brief id")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Model input key=value")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Save the result here")] = None,
    url: Annotated[str | None, typer.Option(help="Server URL (MEDIAGEN_API_URL)")] = None,
    key: Annotated[str | None, typer.Option(help="API key (MEDIAGEN_API_KEY)")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 900.0,
) -> None:
    """Generate media on a running server, wait with a progress bar, and save the file."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mediagen.vocabulary import TERMINAL, Kind, kind_info

    info = kind_info(kind)
    if info is None:
        raise typer.BadParameter("kind must be " + ", ".join(Kind))
    body: dict[str, Any] = {"prompt": prompt, "parameters": dict(_parse_param(p) for p in (param or []))}
    for name, value in (
        ("model", model),
        ("duration", duration),
        ("campaign_id", campaign),
        ("client_id", client),
        ("brief_id", brief),
        ("seed", seed),
    ):
        if value is not None:
            body[name] = value
    with _client(url, key) as http:
        r = http.post(f"/api/v2/generate/{kind}", json=body)
        if r.status_code >= 400:
            print(f"Error {r.status_code}: {r.json().get('detail', r.text)}", file=sys.stderr)
            raise typer.Exit(1)
        created = r.json()
        gen_id = created[info.id_field]
        print(f"{kind} {gen_id} queued on {created['model']} ({created['engine']})", file=sys.stderr)
        if not wait:
            print(gen_id)
            return
        started = time.monotonic()
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
        ) as bar:
            task = bar.add_task(f"{kind} {gen_id}: pending", total=None)
            while True:
                item = http.get(f"/api/{info.path}/{gen_id}").json()
                bar.update(task, description=f"{kind} {gen_id}: {item['status']}")
                if item["status"] in TERMINAL:
                    break
                if time.monotonic() - started > timeout:
                    print(
                        f"Still {item['status']} after {timeout:.0f} s; check later with GET "
                        f"/api/{info.path}/{gen_id}",
                        file=sys.stderr,
                    )
                    raise typer.Exit(2)
                time.sleep(0.5)
        if item["status"] != "completed":
            print(f"{kind} {gen_id} {item['status']}: {item.get('error')}", file=sys.stderr)
            raise typer.Exit(1)
        ctype = item.get("content_type") or ""
        ext = {
            "audio/mpeg": "mp3",
            "audio/wav": "wav",
            "audio/x-wav": "wav",
            "image/png": "png",
            "image/jpeg": "jpg",
            "image/webp": "webp",
            "video/mp4": "mp4",
        }.get(ctype, "bin")
        dest = output or Path(f"{kind}-{gen_id}.{ext}")
        with http.stream("GET", f"/api/{info.path}/{gen_id}/data") as resp, dest.open("wb") as fh:
            resp.raise_for_status()
            for chunk in resp.iter_bytes(1 << 20):
                fh.write(chunk)
        extra = f", {item['duration']:.2f} s" if item.get("duration") else ""
        print(f"Saved {dest} ({ctype}{extra})", file=sys.stderr)
        print(dest)


@models_app.command("list")
def models_list(
    kind: Annotated[str | None, typer.Option(help="audio, image or video")] = None,
) -> None:
    """Models in the catalog."""
    from mediagen.catalog.registry import Catalog

    settings = _settings()
    for e in Catalog.load(overrides=settings.data_dir / "catalog").list(kind):
        print(f"{e.id:36} {e.kind:6} {e.engine:10} {e.title}")


@models_app.command("sync")
def models_sync(
    model_id: Annotated[
        list[str] | None, typer.Argument(help="Model ids; default every hosted model")
    ] = None,
) -> None:
    """Refresh hosted models' input schemas from Replicate (needs REPLICATE_API_TOKEN)."""
    from mediagen.catalog.sync import sync_models

    settings = _settings()
    if not settings.replicate_api_token:
        raise typer.BadParameter("REPLICATE_API_TOKEN is not set")
    for line in sync_models(settings, model_id or None):
        print(line)


if __name__ == "__main__":
    app()
