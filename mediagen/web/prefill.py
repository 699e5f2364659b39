"""What the generate form starts from, when it is opened from an asset: "Edit and rerun" (the
asset's model, prompt, every parameter, seed and filing), "Make a video from this image", and
"Continue this track" / "Follow this melody".

The URL names the source (`?from=audio:51`, `?image_id=12`, `?continue=51`, `?melody=51`) and the
source is read through the generation service with the user's Principal, so another client's asset
is the not-found page, exactly as its own page would be. The form itself is built in the browser
from the model's schema (`static/app.js`); this module only decides the starting values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import QueryParams

from mediagen.auth.service import Principal
from mediagen.catalog.registry import ModelEntry
from mediagen.services import Services
from mediagen.vocabulary import KINDS, Kind, KindInfo, kind_info
from mediagen.web.errors import no_such_address
from mediagen.web.listing import blank

# What a track can start: the generate form's query parameter, and the words the asset page uses.
TRACK_USES = {"continue": "Continue this track", "melody": "Follow this melody"}
TRACK_VERBS = {"continue": "continue a track", "melody": "follow a melody"}
FILING = ("client_id", "campaign_id", "brief_id", "collection")


@dataclass(frozen=True)
class FormStart:
    """The generate form's starting values; empty when it is opened plainly."""

    model: str | None = None
    prompt: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    filing: dict[str, str | None] = field(default_factory=dict)
    note: str = ""  # what the form was opened from, said above it
    source: dict[str, Any] | None = None  # {"kind", "id"} of the asset it came from

    def json(self) -> dict[str, Any]:
        """What `static/app.js` reads to fill the form in."""
        return {
            "model": self.model,
            "prompt": self.prompt,
            "parameters": self.parameters,
            "seed": self.seed,
            "source": self.source,
        }


# which models take what ----------------------------------------------------------------------
def media_input(entry: ModelEntry, kind: Kind) -> str | None:
    """The model input that takes a stored asset of `kind` in the request's `<kind>_id` field
    (seedance: image, kling: start_image), or else its first input of that kind."""
    mapped = entry.request_map.get(f"{kind.value}_id")
    if mapped and entry.media_inputs.get(mapped) == kind.value:
        return mapped
    props = entry.properties
    named = [n for n, k in entry.media_inputs.items() if k == kind.value and n in props]
    named.sort(key=lambda n: props[n].get("x-order", 999))
    return named[0] if named else None


def track_uses(entry: ModelEntry) -> dict[str, dict[str, Any]]:
    """What this model can do with a track ("continue", "melody"), each as the parameters that ask
    for it, without the track's id (set under the model's audio input by `with_track`).

    The catalog says it per model family, not in the schema: MusicGen (local) continues a clip,
    MusicGen-melody follows one, and Replicate's MusicGen does either, chosen by its `continuation`
    switch. Other audio inputs (riffusion, Stable Audio) rework a clip, which is neither."""
    audio = media_input(entry, Kind.AUDIO)
    if audio is None:
        return {}
    family = entry.local.get("family")
    if family == "musicgen":
        return {"continue": {}}
    if family == "musicgen-melody":
        return {"melody": {}}
    if not entry.local and "continuation" in entry.properties:
        return {"continue": {"continuation": True}, "melody": {"continuation": False}}
    return {}


def with_track(entry: ModelEntry, use: str, audio_id: int) -> dict[str, Any]:
    audio = media_input(entry, Kind.AUDIO)
    return {**track_uses(entry)[use], **({audio: audio_id} if audio else {})}


def available_entries(services: Services, kind: Kind) -> list[ModelEntry]:
    """The catalog entries of `kind` that can run here now, the default first."""
    found = []
    for m in services.router.models(kind):
        entry = services.catalog.get(m.id)
        if m.available and entry is not None:
            found.append(entry)
    return found


def image_to_video_model(services: Services) -> ModelEntry | None:
    """The video model an image's "Make a video" opens: the first available one with an image input."""
    return next((e for e in available_entries(services, Kind.VIDEO) if media_input(e, Kind.IMAGE)), None)


def track_model(services: Services, use: str) -> ModelEntry | None:
    """The music model "Continue this track" / "Follow this melody" opens, if any can here."""
    return next((e for e in available_entries(services, Kind.AUDIO) if use in track_uses(e)), None)


# reading the URL -----------------------------------------------------------------------------
def asset_id(value: str | None) -> int | None:
    """A positive id from the URL, or None when absent; anything else names no page."""
    text = blank(value)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise no_such_address()
    return int(text)


def source_ref(value: str | None) -> tuple[KindInfo, int] | None:
    """`?from=audio:51` as (the kind, the id)."""
    text = blank(value)
    if text is None:
        return None
    kind, _, ident = text.partition(":")
    info = kind_info(kind)
    gen_id = asset_id(ident) if ident else None
    if info is None or gen_id is None:
        raise no_such_address()
    return info, gen_id


def filing_of(row: Any) -> dict[str, str | None]:
    return {name: getattr(row, name) for name in FILING}


def form_start(services: Services, me: Principal, info: KindInfo, query: QueryParams) -> FormStart:
    """The form's starting values for this URL (raises NotFound for an asset the user cannot see)."""
    generations = services.generations
    ref = source_ref(query.get("from"))
    if ref is not None:
        src_info, gen_id = ref
        row = generations.get(me, src_info.kind, gen_id)
        params = {k: v for k, v in (row.parameters or {}).items() if k != "prompt"}
        return FormStart(
            model=row.model_id,
            prompt=row.prompt,
            parameters=params,
            seed=row.seed,
            filing=filing_of(row),
            note=f"Edit and rerun of {src_info.noun} #{row.id}: change anything, then generate.",
            source={"kind": src_info.kind.value, "id": row.id},
        )
    image_id = asset_id(query.get("image_id")) if info.kind == Kind.VIDEO else None
    if image_id is not None:
        row = generations.get(me, Kind.IMAGE, image_id)
        entry = image_to_video_model(services)
        image_input = media_input(entry, Kind.IMAGE) if entry else None
        return FormStart(
            model=entry.id if entry else None,
            prompt=row.prompt,
            parameters={image_input: row.id} if image_input else {},
            filing=filing_of(row),
            note=f"A video from image #{row.id}.",
            source={"kind": Kind.IMAGE.value, "id": row.id},
        )
    for use, words in TRACK_USES.items():
        track_id = asset_id(query.get(use)) if info.kind == Kind.AUDIO else None
        if track_id is None:
            continue
        row = generations.get(me, Kind.AUDIO, track_id)
        entry = track_model(services, use)
        return FormStart(
            model=entry.id if entry else None,
            prompt=row.prompt,
            parameters=with_track(entry, use, row.id) if entry else {},
            filing=filing_of(row),
            note=f"{words}: track #{row.id}."
            if entry
            else f"No model here can {TRACK_VERBS[use]}: this form starts from the track's prompt only.",
            source={"kind": Kind.AUDIO.value, "id": row.id},
        )
    return FormStart()


def asset_actions(services: Services, kind: str) -> list[dict[str, str]]:
    """What else the asset page offers to make from an asset of `kind`, each only where a model
    here can do it: [{"label", "gallery", "param"}] for `/generate/{gallery}?{param}={id}`."""
    actions: list[dict[str, str]] = []
    if kind == Kind.IMAGE and image_to_video_model(services) is not None:
        actions.append(
            {
                "label": "Make a video from this image",
                "gallery": KINDS[Kind.VIDEO].gallery,
                "param": "image_id",
            }
        )
    if kind == Kind.AUDIO:
        for use, words in TRACK_USES.items():
            if track_model(services, use) is not None:
                actions.append({"label": words, "gallery": KINDS[Kind.AUDIO].gallery, "param": use})
    return actions
