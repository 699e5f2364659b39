"""Generate on a running server from the shell, and look at the model catalog."""

from __future__ import annotations

import json
import mimetypes
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from mediagen.cli.common import _fail, _settings, app
from mediagen.config import Settings
from mediagen.vocabulary import KindInfo


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


def _kind_or_fail(kind: str, option: str) -> KindInfo:
    from mediagen.vocabulary import Kind, kind_info

    info = kind_info(kind)
    if info is None:
        raise typer.BadParameter(f"{kind!r}: kind must be one of {', '.join(Kind)}", param_hint=option)
    return info


# Each content type, with the file extensions it is saved under (the first when we name the file).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "audio/mpeg": (".mp3",),
    "audio/wav": (".wav",),
    "audio/x-wav": (".wav",),
    "audio/wave": (".wav",),
    "audio/flac": (".flac",),
    "audio/ogg": (".ogg", ".oga"),
    "audio/mp4": (".m4a", ".mp4"),
    "audio/aac": (".aac",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/webp": (".webp",),
    "image/gif": (".gif",),
    "video/mp4": (".mp4", ".m4v"),
    "video/webm": (".webm",),
    "video/quicktime": (".mov",),
}


def _extensions(content_type: str) -> tuple[str, ...]:
    base = content_type.split(";", 1)[0].strip().lower()
    if base in EXTENSIONS:
        return EXTENSIONS[base]
    guessed = mimetypes.guess_extension(base) if base else None
    return (guessed,) if guessed else ()


def _is_media_suffix(suffix: str) -> bool:
    if any(suffix in exts for exts in EXTENSIONS.values()):
        return True
    guessed = mimetypes.guess_type(f"x{suffix}")[0] or ""
    return guessed.startswith(("audio/", "image/", "video/"))


def _prepare_output(output: Path | None) -> None:
    """Make `-o` writable before anything is generated: a missing folder is created."""
    if output is None:
        return
    folder = output if output.is_dir() else output.parent
    if not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            _fail(f"-o {output}: cannot create the folder {folder}: {exc.strerror or exc}")
        print(f"Created folder {folder}", file=sys.stderr)
    elif not folder.is_dir():
        _fail(f"-o {output}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        _fail(f"-o {output}: no permission to write in {folder}")


def _destination(output: Path | None, default_name: str, content_type: str) -> tuple[Path, str | None]:
    """Where the file goes, and a note when that is not the name given.

    A name whose extension does not match the bytes is not saved as is (an MP3 called .wav breaks
    players): the extension is replaced with the right one (appended when the name has none or an
    extension that is not a media type), and the note says so.
    """
    if output is None:
        return Path(default_name), None
    if output.is_dir():
        return output / default_name, None
    exts = _extensions(content_type)
    suffix = output.suffix.lower()
    if not exts or suffix in exts:
        return output, None
    if suffix and _is_media_suffix(suffix):
        fixed = output.with_suffix(exts[0])
        return fixed, f"the asset is {content_type}, not {suffix}: saved as {fixed} instead of {output}"
    fixed = output.with_name(output.name + exts[0])
    return fixed, f"the asset is {content_type}: saved as {fixed}"


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text.strip()[:200] or r.reason_phrase
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


def _named_vs_params(
    named: dict[str, Any], params: dict[str, Any], kind: str, model: str | None, settings: Settings
) -> None:
    """Refuse a top-level option that `--param` sets too (the server would take the --param one),
    also under the model's own name for it (stable-audio's `seconds_total` for `--duration`)."""
    from mediagen.catalog.registry import Catalog

    entries = [
        e
        for e in Catalog.load(overrides=settings.data_dir / "catalog").list(kind)
        if model is None or e.id == model
    ]
    for name, (option, value) in named.items():
        aliases = {name} | {e.request_map[name] for e in entries if name in e.request_map}
        for alias in sorted(aliases & params.keys()):
            raise typer.BadParameter(
                f"{option} {value} and --param {alias}={params[alias]} both set the {name}; give only one",
                param_hint=option,
            )


@app.command()
def generate(
    kind: Annotated[str, typer.Argument(help="audio, image or video")],
    prompt: Annotated[str, typer.Argument()],
    model: Annotated[str | None, typer.Option(help="Model id, e.g. synth/music")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds")] = None,
    campaign: Annotated[str | None, typer.Option(help="Campaign id")] = None,
    client: Annotated[str | None, typer.Option(help="Client id")] = None,
    brief: Annotated[str | None, typer.Option(help="Brief id")] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Reproduce a result (take i of --n gets seed + i); default a fresh random one"),
    ] = None,
    n: Annotated[
        int,
        typer.Option("--n", "-n", min=1, help="How many takes: distinct seeds, one take group, all saved"),
    ] = 1,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Model input key=value")] = None,
    brand: Annotated[
        bool,
        typer.Option(
            "--brand/--no-brand",
            help="Apply the client's brand to the prompt (--no-brand sends it as typed)",
        ),
    ] = True,
    override_budget: Annotated[
        bool,
        typer.Option(help="Admins only: make it even if it takes the campaign over its budget"),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Save the result here (a file or a folder; a missing folder is created; a wrong "
            "extension is replaced with the right one)",
        ),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Server URL (MEDIAGEN_API_URL)")] = None,
    key: Annotated[str | None, typer.Option(help="API key (MEDIAGEN_API_KEY)")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 900.0,
) -> None:
    """Generate media on a running server, wait with a progress bar, and save the file."""
    info = _kind_or_fail(kind, "KIND")
    params: dict[str, Any] = {}
    for raw in param or []:
        name, value = _parse_param(raw)
        if name in params:
            raise typer.BadParameter(f"--param {name} is given twice", param_hint="--param")
        params[name] = value
    options = {
        "model": ("--model", model),
        "duration": ("--duration", duration),
        "campaign_id": ("--campaign", campaign),
        "client_id": ("--client", client),
        "brief_id": ("--brief", brief),
        "seed": ("--seed", seed),
    }
    named = {name: (option, value) for name, (option, value) in options.items() if value is not None}
    _named_vs_params(named, params, kind, model, _settings())
    body: dict[str, Any] = {"prompt": prompt, "parameters": params}
    body.update({name: value for name, (_, value) in named.items()})
    if not brand:
        body["brand"] = False
    if override_budget:
        body["override_budget"] = True
    if n > 1:
        body["n"] = n
        if output is not None and not output.is_dir() and output.suffix:
            raise typer.BadParameter(
                "with --n > 1, -o is a folder: each take is saved there", param_hint="-o"
            )
    if wait:
        # Several takes go into -o as a folder (made if missing), each under its own name.
        _prepare_output(output / "take" if n > 1 and output is not None else output)
    http = _client(url, key)
    base = str(http.base_url).rstrip("/")
    with http:
        try:
            r = http.post(f"/api/v2/generate/{kind}", json=body)
        except httpx.TimeoutException:
            _fail(f"the Mediagen server at {base} did not answer in time; check {base}/health")
        except httpx.TransportError as exc:
            _fail(
                f"cannot reach the Mediagen server at {base} ({exc}). Check that `mediagen serve` is "
                "running there, or point --url / MEDIAGEN_API_URL at it"
            )
        if r.status_code >= 400:
            print(f"Error {r.status_code}: {_detail(r)}", file=sys.stderr)
            raise typer.Exit(1)
        created = r.json()
        ids = created.get("ids") or [created[info.id_field]]
        group = f" (take group {created['take_group']})" if created.get("take_group") else ""
        queued = ", ".join(str(i) for i in ids)
        print(f"{kind} {queued} queued on {created['model']} ({created['engine']}){group}", file=sys.stderr)
        if not wait:
            for gen_id in ids:
                print(gen_id)
            return
        failed = [gen_id for gen_id in ids if not _fetch(http, kind, info, gen_id, output, timeout)]
        if failed:
            raise typer.Exit(1)


def _fetch(
    http: httpx.Client, kind: str, info: KindInfo, gen_id: Any, output: Path | None, timeout: float
) -> bool:
    """Wait for one take and save it (its path printed on stdout); False if it did not complete."""
    base = str(http.base_url).rstrip("/")
    where = f"{base}/api/{info.path}/{gen_id}"
    try:
        item = _wait(http, kind, info.path, gen_id, timeout)
    except httpx.TransportError as exc:
        _fail(f"lost the connection to {base} ({exc}); the {kind} goes on there: GET {where}")
    if item["status"] != "completed":
        print(f"{kind} {gen_id} {item['status']}: {item.get('error')}", file=sys.stderr)
        return False
    ctype = item.get("content_type") or ""
    exts = _extensions(ctype)
    dest, note = _destination(output, f"{kind}-{gen_id}{exts[0] if exts else '.bin'}", ctype)
    if note:
        print(f"Note: {note}", file=sys.stderr)
    if output is not None and dest != output and not output.is_dir() and dest.exists():
        _fail(f"not saved: {dest} exists already. The {kind} is on the server: {where}/data")
    try:
        _save(http, f"/api/{info.path}/{gen_id}/data", dest)
    except (OSError, httpx.HTTPError, _SaveError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _fail(f"could not save {dest}: {reason}. The {kind} is on the server: {where}/data")
    extra = f", {item['duration']:.2f} s" if item.get("duration") else ""
    print(f"Saved {dest} ({ctype}{extra})", file=sys.stderr)
    print(dest)
    return True


def _wait(http: httpx.Client, kind: str, path: str, gen_id: Any, timeout: float) -> dict[str, Any]:
    """Follow the asset with a progress bar (its percent where the engine reports one) until it
    finishes: from the server's event stream, or by polling where there is none (cli/progress.py)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mediagen.cli import progress

    def get_item(ident: int) -> dict[str, Any]:
        r = http.get(f"/api/{path}/{ident}")
        if r.status_code >= 400:
            _fail(f"{kind} {ident}: the server answered {r.status_code}: {_detail(r)}")
        return dict(r.json())

    deadline = time.monotonic() + timeout
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task(f"{kind} {gen_id}: pending", total=None)

        def show(item: dict[str, Any]) -> None:
            done = item.get("progress")
            text = item.get("progress_note") or item["status"]
            if isinstance(done, int | float) and item["status"] == "processing":
                bar.update(task, description=f"{kind} {gen_id}: {text} {round(done * 100)}%", total=1.0)
                bar.update(task, completed=done)
            else:
                bar.update(task, description=f"{kind} {gen_id}: {text}", total=None)

        try:
            items = progress.follow(http, [int(gen_id)], deadline, get_item, show)
        except progress.StreamUnavailable:
            items = progress.poll([int(gen_id)], deadline, get_item, show)
    item = items.get(int(gen_id)) or get_item(int(gen_id))
    if item["status"] not in progress.TERMINAL:
        print(
            f"Still {item['status']} after {timeout:.0f} s; check later with GET /api/{path}/{gen_id}",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    return item


class _SaveError(Exception):
    pass


def _save(http: httpx.Client, path: str, dest: Path) -> None:
    """Stream the asset's bytes into `dest`; a partial file is removed."""
    with http.stream("GET", path) as resp:
        if resp.status_code >= 400:
            resp.read()
            raise _SaveError(f"the server answered {resp.status_code}: {_detail(resp)}")
        try:
            with dest.open("wb") as fh:
                for chunk in resp.iter_bytes(1 << 20):
                    fh.write(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise


if __name__ == "__main__":
    app()
