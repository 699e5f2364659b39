"""The few things that differ between audio, image and video: names and derivations.

Everything else in the pipeline is shared; add a kind here, not a module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindInfo:
    kind: str
    path: str  # URL segment and list key: /api/audio, /api/videos, /api/images
    id_field: str  # seed's response field for the new id
    url_field: str  # seed's item field pointing at the bytes
    label: str
    derivations: tuple[str, ...]  # made once at ingest


KINDS: dict[str, KindInfo] = {
    "audio": KindInfo("audio", "audio", "audio_id", "audio_url", "Music", ("waveform",)),
    "image": KindInfo("image", "images", "image_id", "image_url", "Images", ("thumbnail",)),
    "video": KindInfo("video", "videos", "video_id", "video_url", "Videos", ("poster", "thumbnail")),
}
BY_PATH: dict[str, KindInfo] = {k.path: k for k in KINDS.values()}

DERIVATION_TYPES = {
    "waveform": "application/json",
    "thumbnail": "image/webp",
    "poster": "image/webp",
}
