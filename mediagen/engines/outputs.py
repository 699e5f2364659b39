"""Turn a provider's `output` value into the files the pipeline should fetch.

Replicate (and Cog) models return JSON whose shape depends on the model: a single URI
(musicgen, seedance), an array of URIs (flux-schnell, even for one image), an object of named URIs
(riffusion: `{"audio": ..., "spectrogram": ...}`), `data:` URLs (sync mode, Cog without an upload
URL), or plain text. One function maps all of them onto roles, so every engine and every kind
shares the same rules: the asset itself is role "main", anything else is a derivation kept under a
name of its own.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from mediagen.engines.base import OutputFile

__all__ = ["outputs_from_value", "is_uri", "guess_content_type", "MAIN_KEY_PREFERENCE"]

# Keys tried, in order, when an object output arrives and the caller did not name the main key.
MAIN_KEY_PREFERENCE = ("audio", "video", "image", "output", "file", "media", "url")

# mimetypes' answers vary by platform for these; pin the ones browsers and our probes expect.
_CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
}


def is_uri(value: object) -> bool:
    """True for strings the pipeline can fetch: http(s) URLs and data: URLs."""
    if not isinstance(value, str):
        return False
    head = value[:8].lower()
    return head.startswith(("https://", "http://", "data:"))


def guess_content_type(url: str) -> str | None:
    """The media type a data: URL declares, or the one the URL path's extension implies."""
    if url[:5].lower() == "data:":
        header = url[5:].split(",", 1)[0]
        mime = header.split(";", 1)[0].strip().lower()
        return mime or "text/plain"
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    if dot == -1 or "/" in path[dot:]:
        return None
    ext = path[dot:]
    return _CONTENT_TYPES.get(ext) or mimetypes.guess_type("x" + ext)[0]


def _file(role: str, url: str) -> OutputFile:
    return OutputFile(role=role, url=url, content_type=guess_content_type(url))


def _uris(values: Iterable[Any]) -> list[str]:
    return [v for v in values if is_uri(v)]


def _pick_main_key(value: Mapping[str, Any], main_key: str | None) -> str | None:
    def has_uri(key: str) -> bool:
        item = value.get(key)
        return is_uri(item) or (isinstance(item, list) and bool(_uris(item)))

    if main_key is not None:
        return main_key if has_uri(main_key) else None
    for key in MAIN_KEY_PREFERENCE:
        if has_uri(key):
            return key
    return next((key for key in value if has_uri(key)), None)


def outputs_from_value(value: Any, *, main_key: str | None = None) -> list[OutputFile]:
    """Map an `output` value onto OutputFiles: exactly one "main" when any file is present.

    - a URI string → [main]
    - a list → first URI is "main", the rest "output_1", "output_2", … (non-URI items skipped)
    - an object → `main_key` (or the first of MAIN_KEY_PREFERENCE present) is "main"; every other
      URI-valued key keeps its own name as role; a list under a key gives "<key>", "<key>_1", …
    - anything else (text, numbers, None) → []
    If `main_key` is named but absent, nothing is promoted to "main": the caller asked for a
    specific file, and guessing another would store the wrong asset.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [_file("main", value)] if is_uri(value) else []
    if isinstance(value, list | tuple):
        uris = _uris(value)
        return [_file("main" if i == 0 else f"output_{i}", uri) for i, uri in enumerate(uris)]
    if isinstance(value, Mapping):
        chosen = _pick_main_key(value, main_key)
        files: list[OutputFile] = []
        for key, item in value.items():
            if not isinstance(key, str):
                continue
            items = [item] if is_uri(item) else _uris(item) if isinstance(item, list) else []
            for i, uri in enumerate(items):
                if key == chosen:
                    role = "main" if i == 0 else f"output_{i}"
                else:
                    role = key if i == 0 else f"{key}_{i}"
                files.append(_file(role, uri))
        # Main first: consumers that take "the first file" get the asset.
        files.sort(key=lambda f: f.role != "main")
        return files
    return []
