"""Post-production pages: the compose page (`/compose`) and a channel export (`/exports/{id}`).

The compose page lists what the user may build from (their finished videos, images and music,
newest first) and the recipe's choices; `static/app.js` keeps the clips in order and posts the
recipe to `POST /api/v2/compose`, like the generate page posts its jobs. `?video_id=`, `?image_id=`
and `?audio_id=` start it with those assets (the asset page's "Put music on this video" and
"Master for …"), `?loudness=`, `?aspect=` and `?length=` with those choices.

An export's page lists its renditions as the server knows them; app.js follows the JSON API while
any is still running and then reloads the table from this page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import QueryParams

from mediagen.auth.service import Principal
from mediagen.errors import MediagenError
from mediagen.generations.exports import CHANNELS
from mediagen.generations.presenters import asset_json
from mediagen.loudness.presets import PRESETS
from mediagen.services import Services
from mediagen.vocabulary import ACTIVE, KINDS, Kind, Status
from mediagen.web.assets import AssetId, loudness_verdicts, signed
from mediagen.web.errors import no_such_address
from mediagen.web.generate import chosen_filing, filing_options
from mediagen.web.listing import card_items
from mediagen.web.pages import page_router, render
from mediagen.web.session import Me, svc

router = page_router()

LIBRARY_SIZE = 60  # newest finished assets of each kind offered to pick from
MAX_PREFILL = 20  # ?video_id= … given more often than this names no sensible page
ASPECTS = (
    ("16:9", "Landscape", "1920 × 1080"),
    ("9:16", "Vertical", "1080 × 1920"),
    ("1:1", "Square", "1080 × 1080"),
    ("4:5", "Portrait", "1080 × 1350"),
)
LENGTHS = (6, 15, 30, 60)  # the usual cut-downs, offered as one-click choices
PICK_FIELDS = (
    "id",
    "kind",
    "prompt",
    "duration",
    "width",
    "height",
    "thumbnail_url",
    "poster_url",
    "waveform_url",
    "data_url",
    "status",
)


def pick_json(asset: dict[str, Any]) -> dict[str, Any]:
    """What the page's script needs of a library item (not the whole asset)."""
    return {k: asset.get(k) for k in PICK_FIELDS}


def query_ids(query: QueryParams, name: str) -> list[int]:
    values = query.getlist(name)
    if len(values) > MAX_PREFILL or not all(v.isascii() and v.isdigit() and len(v) < 19 for v in values):
        raise no_such_address()
    return [int(v) for v in values]


def library(services: Services, me: Principal, kind: str, wanted: list[int]) -> list[dict[str, Any]]:
    """The newest finished assets of a kind, plus any the URL asks for that are not among them
    (another client's id is a 404 page, as everywhere)."""
    info = KINDS[Kind(kind)]
    rows, _ = services.generations.list(
        me, kind, filters={"status": Status.COMPLETED}, limit=LIBRARY_SIZE, offset=0
    )
    items = card_items(services, info, rows)
    have = {a["id"] for a in items}
    extra = [services.generations.get(me, kind, i) for i in dict.fromkeys(wanted) if i not in have]
    names = services.generations.derivation_names([r.id for r in extra])
    return [asset_json(r, info, names.get(r.id, [])) for r in extra] + items


def clip_key(clip: dict[str, int]) -> tuple[str, int]:
    return ("video", clip["video_id"]) if "video_id" in clip else ("image", clip["image_id"])


def prefill(query: QueryParams, library_by_kind: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The recipe the page starts with, from the URL."""
    found = {(k, a["id"]): a for k, items in library_by_kind.items() for a in items}
    clips = [{"video_id": i} for i in query_ids(query, "video_id")]
    clips += [{"image_id": i} for i in query_ids(query, "image_id")]
    audio = query_ids(query, "audio_id")[:1]
    music = found.get(("audio", audio[0])) if audio else None
    first = found.get(clip_key(clips[0])) if clips else None
    title = ""
    length = query.get("length") or ""
    if first is not None:
        title = f"{first['prompt'][:150]} · with music"
    elif music is not None:
        title = f"{music['prompt'][:150]} · master"
        if not length and music.get("duration"):
            length = f"{music['duration']:.1f}".removesuffix(".0")
    loudness = query.get("loudness")
    aspect = query.get("aspect")
    return {
        "clips": clips,
        "music": {"audio_id": music["id"]} if music else None,
        "title": title,
        "length": length if _number(length) else "",
        "loudness": loudness if loudness in PRESETS else "social",
        "aspect": aspect if aspect in {a[0] for a in ASPECTS} else "16:9",
    }


def _number(text: str) -> bool:
    try:
        return 0 < float(text) <= 600
    except ValueError:
        return False


def source_filing(services: Services, me: Principal, query: QueryParams, first: dict[str, Any] | None) -> Any:
    """Filing from the URL, else from the asset the page starts with."""
    if first is None or any(query.get(k) for k in ("client_id", "campaign_id", "brief_id")):
        return chosen_filing(services, me, query)
    implied = {k: first.get(k) or "" for k in ("client_id", "campaign_id", "brief_id")}
    return chosen_filing(services, me, QueryParams({k: v for k, v in implied.items() if v}))


@router.get("/compose", response_class=HTMLResponse)
def compose_page(request: Request, me: Me) -> Response:
    services = svc(request)
    query = request.query_params
    lib = {
        "video": library(services, me, "video", query_ids(query, "video_id")),
        "image": library(services, me, "image", query_ids(query, "image_id")),
        "audio": library(services, me, "audio", query_ids(query, "audio_id")[:1]),
    }
    start = prefill(query, lib)
    ids = [clip_key(c) for c in start["clips"]]
    if start["music"]:
        ids.append(("audio", start["music"]["audio_id"]))
    by_key = {(k, a["id"]): a for k, items in lib.items() for a in items}
    first = by_key.get(ids[0]) if ids else None
    context = {
        "videos": lib["video"],
        "images": lib["image"],
        "music": lib["audio"],
        "start": start,
        "aspects": ASPECTS,
        "lengths": LENGTHS,
        "presets": list(PRESETS.values()),
        "compose_json": {
            "library": {k: [pick_json(a) for a in items] for k, items in lib.items()},
            "start": start,
        },
        "chosen": source_filing(services, me, query, first),
        "form": {"collection": query.get("collection") or ""},
        **filing_options(services, me),
    }
    return render(request, "compose.html", context, me=me, section="compose")


# exports -------------------------------------------------------------------------------------
def rendition_rows(services: Services, me: Principal, export_id: int) -> tuple[Any, list[dict[str, Any]]]:
    export, renditions = services.exports.get(me, export_id)
    shown = services.exports.json(export, renditions)
    rows = []
    for (channel, gen), data in zip(renditions, shown["renditions"], strict=True):
        preset_name = CHANNELS[channel].loudness if channel in CHANNELS else None
        if gen is not None and preset_name is None:
            preset_name = (gen.parameters or {}).get("loudness")
        loudness = (
            {"integrated_lufs": gen.loudness_lufs, "true_peak_dbtp": gen.true_peak_dbtp}
            if gen is not None and gen.loudness_lufs is not None
            else None
        )
        preset_verdict = next(
            (v for v in loudness_verdicts(loudness) if v["preset"] == preset_name), None
        ) if loudness else None  # fmt: skip
        rows.append(
            {
                **data,
                "gen": gen,
                "href": f"/assets/{gen.kind}/{gen.id}" if gen is not None else None,
                "download_url": f"{data['data_url']}?download=true" if data["data_url"] else None,
                "preset": PRESETS.get(preset_name or ""),
                "lufs": signed(gen.loudness_lufs) if gen is not None else "—",
                "verdict": preset_verdict["verdict"] if preset_verdict else None,
            }
        )
    return (export, shown), rows


@router.get("/exports/{export_id}", response_class=HTMLResponse)
def export_page(request: Request, export_id: AssetId, me: Me) -> Response:
    """One channel export: each rendition's status, size and loudness, and the zip."""
    services = svc(request)
    (export, shown), rows = rendition_rows(services, me, export_id)
    info = KINDS[Kind(export.source_kind)]
    try:
        source: Any = services.generations.get(me, export.source_kind, export.source_id)
    except MediagenError:
        source = None  # deleted since: the renditions are their own assets
    context = {
        "export": export,
        "shown": shown,
        "rows": rows,
        "source": source,
        "info": info,
        "running": sum(1 for r in rows if r["status"] in ACTIVE),
        "any_done": any(r["status"] == Status.COMPLETED for r in rows),
    }
    return render(request, "export.html", context, me=me, section=info.gallery)
