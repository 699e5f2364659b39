"""One asset's page, and its gallery card on its own (for cards that refresh themselves).

The page also shows what post-production adds to an asset: its loudness against every delivery
preset (a badge each, from `loudness.verdict`), what it was made from and what it is used in
(`GenerationService.lineage`), and the channels it can be exported for. Cards show one loudness
badge (the `social` verdict); the template globals below serve both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from mediagen.auth.service import Principal
from mediagen.generations.exports import CHANNELS, Channel
from mediagen.generations.presenters import asset_json
from mediagen.loudness.presets import PRESETS, verdict
from mediagen.vocabulary import MAX_ID, KindInfo, kind_info
from mediagen.web.errors import not_found_page
from mediagen.web.filters import iso
from mediagen.web.listing import brief_choices, campaign_choices, client_choices, name_of, options_with
from mediagen.web.pages import page_router, render, templates
from mediagen.web.session import Me, svc

router = page_router()


# An id past what a row can hold names nothing: the not-found page, not an overflow.
AssetId = Annotated[int, Path(ge=1, le=MAX_ID)]

VERDICT_TEXT = {"meets": "Meets", "too_loud": "Too loud", "too_quiet": "Too quiet", "unknown": "Not measured"}
CARD_PRESET = "social"  # the one verdict a gallery card has room for
SOURCE_FIELD = re.compile(r"^clips\[(\d+)\]\.(video_id|image_id)$")


# loudness ------------------------------------------------------------------------------------
def signed(value: float | None, digits: int = 1) -> str:
    """−14.0 (a real minus sign), or — when not measured."""
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    return text.replace("-", "\u2212")


def loudness_verdicts(loudness: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One row per delivery preset: its name, title, target and ceiling, and the verdict."""
    lufs = (loudness or {}).get("integrated_lufs")
    peak = (loudness or {}).get("true_peak_dbtp")
    return [
        {
            "preset": p.name,
            "title": p.title,
            "target": p.target_lufs,
            "ceiling": p.ceiling_dbtp,
            "verdict": verdict(p, lufs, peak),
        }
        for p in PRESETS.values()
    ]


def card_loudness(loudness: Mapping[str, Any] | None, preset: str = CARD_PRESET) -> dict[str, Any] | None:
    """What a card's badge says: the integrated loudness and the verdict for `preset`."""
    if not loudness or loudness.get("integrated_lufs") is None:
        return None
    p = PRESETS[preset]
    found = verdict(p, loudness.get("integrated_lufs"), loudness.get("true_peak_dbtp"))
    return {
        "preset": p.name,
        "title": p.title,
        "verdict": found,
        "text": VERDICT_TEXT[found].lower(),
        "lufs": signed(loudness.get("integrated_lufs")),
    }


templates.env.globals.update(
    VERDICT_TEXT=VERDICT_TEXT, loudness_verdicts=loudness_verdicts, card_loudness=card_loudness
)
templates.env.filters["signed"] = signed


# lineage -------------------------------------------------------------------------------------
def source_label(field: str, input_titles: Mapping[str, str]) -> str:
    """Where in the recipe a source was used: "Clip 2", "Music", or the model input's title."""
    m = SOURCE_FIELD.match(field)
    if m:
        return f"Clip {int(m.group(1)) + 1}"
    if field == "music.audio_id":
        return "Music"
    return input_titles.get(field, field)


def lineage_links(lineage: Mapping[str, Any], input_titles: Mapping[str, str]) -> dict[str, Any]:
    """made_from and used_in as the page links them; a deleted source has no link."""

    def link(item: Mapping[str, Any]) -> dict[str, Any]:
        info = kind_info(item["kind"])
        noun = info.noun if info else item["kind"]
        return {
            **item,
            "name": f"{noun.capitalize()} #{item['id']}",
            "href": f"/assets/{item['kind']}/{item['id']}" if item.get("exists", True) and info else None,
        }

    return {
        "made_from": [
            {**link(m), "label": source_label(m.get("field", ""), input_titles)}
            for m in lineage.get("made_from", [])
        ],
        "used_in": [link(u) for u in lineage.get("used_in", [])],
    }


# channels ------------------------------------------------------------------------------------
def describe_channel(channel: Channel) -> str:
    """youtube: "16:9 · −14 LUFS"; tiktok: "9:16 · −14 LUFS · up to 60 s"."""
    preset = PRESETS[channel.loudness]
    parts = [channel.aspect or "audio", f"{signed(preset.target_lufs, 0)} LUFS"]
    if channel.max_length:
        parts.append(f"up to {channel.max_length:g} s")
    return " · ".join(parts)


def export_channels(kind: str) -> list[dict[str, str]]:
    return [{"name": c.name, "about": describe_channel(c)} for c in CHANNELS.values() if c.kind == kind]


# review --------------------------------------------------------------------------------------
# How the review history reads a move to each status: "Approved by ana@example.com, 2 h ago".
HISTORY_VERBS = {
    "draft": "Back to draft",
    "in_review": "Sent for review",
    "approved": "Approved",
    "rejected": "Rejected",
}
templates.env.globals.update(HISTORY_VERBS=HISTORY_VERBS)


def music_facts(asset: Mapping[str, Any]) -> dict[str, Any] | None:
    """Tempo, key and genre where the engine wrote them (the synth does; a hosted model may not)."""
    meta = asset.get("metadata") or {}
    bpm = meta.get("bpm") if isinstance(meta.get("bpm"), int | float) else None
    key = meta.get("scale") or meta.get("key")
    genre = str(meta["genre"]).replace("_", " ") if meta.get("genre") else None
    if bpm is None and not key and not genre:
        return None
    return {"bpm": bpm, "key": key, "genre": genre}


def filing_context(request: Request, me: Principal, asset: Mapping[str, Any]) -> dict[str, Any]:
    """What `_filing.html` needs to re-file the asset, with its present filing chosen."""
    services = svc(request)
    related = services.campaigns
    chosen = {name: asset.get(name) for name in ("client_id", "campaign_id", "brief_id")}
    return {
        "clients": options_with(
            client_choices(services, me), chosen["client_id"], lambda i: related.get_client(me, i)
        ),
        "campaigns": options_with(
            campaign_choices(services, me), chosen["campaign_id"], lambda i: related.get_campaign(me, i)
        ),
        "briefs": options_with(
            brief_choices(services, me), chosen["brief_id"], lambda i: related.get_brief(me, i)
        ),
        "chosen": chosen,
        "collection_value": asset.get("collection"),
    }


def review_context(request: Request, me: Principal, kind: str, asset: Mapping[str, Any]) -> dict[str, Any]:
    """The review history (newest first) and the comments (by time), as the partials show them.

    `own` marks the comments this user may delete, by the service's rule: their own, a share-link
    reviewer's (the team moderates those), or any for an admin."""
    services = svc(request)
    moves = services.review.history(me, kind, asset["id"])
    history = [{"to": m.to_status, "by": m.actor_name or "someone", "at": iso(m.at)} for m in reversed(moves)]
    comments = [
        {
            "id": c.id,
            "at": c.at_seconds,
            "text": c.text,
            "author": c.author_name,
            "created_at": iso(c.created_at),
            "own": c.author_user is None or c.author_user == me.user_id or me.is_admin,
        }
        for c in services.comments.list(me, kind, asset["id"])
    ]
    comments.sort(key=lambda c: (c["at"] is None, c["at"] or 0.0, c["id"]))
    return {"history": history, "comments": comments}


# pages ---------------------------------------------------------------------------------------
def load_asset(
    request: Request, me: Principal, kind: str, gen_id: int, *, lineage: bool = False
) -> tuple[KindInfo, dict[str, Any]]:
    info = kind_info(kind)
    if info is None:
        raise not_found_page()
    services = svc(request)
    row = services.generations.get(me, kind, gen_id)  # 404 (an HTML page) outside the user's clients
    links = services.generations.lineage(me, row.id) if lineage else None
    return info, asset_json(row, info, list(services.generations.derivations(row.id)), links)


@router.get("/assets/{kind}/{gen_id}", response_class=HTMLResponse)
def asset_page(request: Request, kind: str, gen_id: AssetId, me: Me) -> Response:
    info, asset = load_asset(request, me, kind, gen_id, lineage=True)
    services = svc(request)
    entry = services.catalog.get(asset["model_id"])
    related = services.campaigns
    input_titles = {k: v.get("title", k) for k, v in (entry.properties if entry else {}).items()}
    context = {
        "info": info,
        "kind": kind,
        "asset": asset,
        "gallery": info.gallery,
        "model_title": entry.title if entry else asset["model_id"],
        "model_label": entry.label if entry else None,
        "client": name_of(related.get_client, me, asset["client_id"]),
        "campaign": name_of(related.get_campaign, me, asset["campaign_id"]),
        "brief": name_of(related.get_brief, me, asset["brief_id"]),
        "input_titles": input_titles,
        "media_inputs": entry.media_inputs if entry else {},
        "server_now": iso(datetime.now(UTC)),
        "verdicts": loudness_verdicts(asset["loudness"]) if asset["loudness"] else [],
        "lineage": lineage_links(asset, input_titles),
        "channels": export_channels(kind),
        "music": music_facts(asset) if kind == "audio" else None,
        **filing_context(request, me, asset),
        **review_context(request, me, kind, asset),
    }
    return render(request, "asset.html", context, me=me, section=info.gallery)


@router.get("/assets/{kind}/{gen_id}/card", response_class=HTMLResponse)
def asset_card(request: Request, kind: str, gen_id: AssetId, me: Me) -> Response:
    """One gallery card, for cards of running jobs that refresh themselves in place."""
    info, asset = load_asset(request, me, kind, gen_id)
    return templates.TemplateResponse(request, "card.html", {"a": asset, "kind": kind, "info": info})
