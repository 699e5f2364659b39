"""The name an asset's file gets when it is downloaded: `<campaign>-<prompt slug>-<id>.<ext>`.

One function for the zip of many assets and the single download's Content-Disposition, so a file
saved either way has the same name. Names are ASCII (a slug of the campaign's name, or else the
client's, and of the prompt), short enough for any file system, and unique by the asset id.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

SLUG_MAX = 40

# What our own ingest stores, first; anything else goes through mimetypes.
EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
}


def slug(text: str | None, limit: int = SLUG_MAX) -> str:
    """Lowercase ASCII words joined by '-', at most `limit` characters, cut at a word break when
    there is one; accents are folded ("Café" → "cafe"), anything else not ASCII is dropped."""
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    if len(words) <= limit:
        return words
    cut = words[:limit]
    if words[limit] != "-" and "-" in cut:
        cut = cut.rsplit("-", 1)[0]
    return cut.strip("-")


def extension(content_type: str | None) -> str:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in EXTENSIONS:
        return EXTENSIONS[base]
    guessed = mimetypes.guess_extension(base) if base else None
    return guessed.lstrip(".") if guessed else "bin"


def asset_filename(
    gen_id: int,
    kind: str,
    prompt: str | None,
    content_type: str | None,
    *,
    campaign: str | None = None,
    client: str | None = None,
) -> str:
    """`<campaign>-<prompt slug>-<id>.<ext>`: the campaign's name (or else the client's) slugged,
    left out when the asset is filed under neither; the kind stands in for an empty prompt slug."""
    parts = [slug(campaign) or slug(client), slug(prompt) or kind, str(gen_id)]
    return "-".join(p for p in parts if p) + f".{extension(content_type)}"
