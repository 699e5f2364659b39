"""A client's brand applied to a prompt: what the model is sent, and what was added or left out.

Every generation filed under a client goes through `apply_brand` (unless the request says
`brand: false`), and the kit planner reads the same `Brand`. The result is deterministic (the
same brand and prompt always give the same text), so a retry or a second take sends exactly what
the first did.

- Style keywords are appended to every kind ("…, bold, sunny style").
- Audio gets the brand's music genres and moods and its tempo range ("house, uplifting,
  110–128 bpm"); a tempo is added only when the prompt names none.
- Images and videos get the palette as colour words ("orange and navy colour palette"): image
  models paint a hex code as text more often than they read it as a colour.
- Anything the prompt already says (whole words, any case) is not added twice.
- Words to avoid are taken out of the prompt sent (whole words, any case) and never written as
  "no …": a text encoder reads "no dark" as "dark". Where the model has a negative prompt they
  go there instead; where it has none they are simply left out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy.orm import Session

from mediagen.campaigns.schemas import Brand
from mediagen.campaigns.tables import Client

__all__ = ["Branded", "apply_brand", "brand_of", "colour_name", "merge_negative", "mentions"]

log = logging.getLogger("mediagen.campaigns")

# Named colours a prompt can use, in sRGB. Enough names to tell a palette's colours apart without
# names no model knows ("cadet blue").
COLOURS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("black", (0, 0, 0)),
    ("charcoal", (54, 69, 79)),
    ("grey", (128, 128, 128)),
    ("silver", (192, 192, 192)),
    ("white", (255, 255, 255)),
    ("cream", (255, 253, 208)),
    ("beige", (225, 205, 165)),
    ("tan", (210, 180, 140)),
    ("brown", (140, 80, 30)),
    ("maroon", (128, 0, 0)),
    ("crimson", (200, 20, 60)),
    ("red", (230, 30, 30)),
    ("coral", (255, 127, 80)),
    ("salmon", (250, 128, 114)),
    ("orange", (255, 140, 0)),
    ("gold", (255, 200, 0)),
    ("yellow", (255, 240, 40)),
    ("olive", (128, 128, 0)),
    ("lime green", (150, 230, 50)),
    ("green", (30, 160, 60)),
    ("forest green", (20, 90, 40)),
    ("mint", (160, 240, 200)),
    ("teal", (0, 128, 128)),
    ("turquoise", (64, 224, 208)),
    ("cyan", (0, 220, 240)),
    ("sky blue", (120, 190, 240)),
    ("blue", (30, 90, 220)),
    ("navy", (0, 0, 110)),
    ("indigo", (75, 0, 130)),
    ("purple", (128, 40, 160)),
    ("violet", (150, 90, 230)),
    ("lavender", (200, 180, 240)),
    ("magenta", (230, 0, 200)),
    ("pink", (255, 170, 200)),
    ("hot pink", (255, 60, 160)),
)

_TEMPO = re.compile(r"\b\d{2,3}\s*(?:-|–|to)?\s*(?:\d{2,3}\s*)?bpm\b", re.IGNORECASE)


@dataclass(frozen=True)
class Branded:
    """A prompt with the brand applied.

    `prompt_sent` is what the model gets; `negative_prompt` holds the words to avoid when the
    model has a negative prompt input (else None); `applied` says, in words for a person, what
    the brand added or left out ("Brand applied: …")."""

    prompt_sent: str
    negative_prompt: str | None = None
    applied: list[str] = field(default_factory=list)


def brand_of(s: Session, client_id: str | None) -> Brand | None:
    """The client's brand, or None (no client, no brand set). A stored brand that no longer
    reads as a `Brand` is logged and treated as none rather than failing every generation."""
    if client_id is None:
        return None
    row = s.get(Client, client_id)
    if row is None or not row.brand:
        return None
    try:
        return Brand.model_validate(row.brand)
    except ValidationError as exc:
        log.warning("client %s: stored brand is not readable, not applied: %s", client_id, exc)
        return None


def _word_pattern(phrase: str, tail: str = "") -> re.Pattern[str]:
    """A phrase as whole words, any case, any run of spaces between its words (then `tail`)."""
    words = [re.escape(w) for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)" + tail, re.IGNORECASE)


def mentions(text: str, phrase: str) -> bool:
    """Whether `text` says `phrase` as whole words (any case)."""
    return bool(phrase.strip()) and _word_pattern(phrase).search(text) is not None


def _strip(text: str, phrases: Iterable[str]) -> tuple[str, list[str]]:
    """`text` without the phrases (whole words, any case), tidied; and which were found."""
    found: list[str] = []
    for phrase in phrases:
        if not phrase.strip():
            continue
        # The comma after a removed word goes with it: "a dark, calm sea" -> "a calm sea"; an
        # article before it is marked, to agree with the word that now follows it.
        pattern = re.compile(
            r"(?:(?<!\w)(an?)\s+)?" + _word_pattern(phrase, r"\s*[,;]?").pattern, re.IGNORECASE
        )
        text, count = pattern.subn(lambda m: f" {_ARTICLE}{m[1]} " if m[1] else " ", text)
        if count:
            found.append(phrase)
    return _tidy(_articles(text)), found


_ARTICLE = "\x00"  # marks an article whose noun phrase lost a word


def _articles(text: str) -> str:
    """ "a alley" -> "an alley" and "an red door" -> "a red door", only where a word was removed."""

    def agree(m: re.Match[str]) -> str:
        article = "an" if m[2][0].lower() in "aeiou" else "a"
        return (article.capitalize() if m[1][0].isupper() else article) + " " + m[2]

    text = re.sub(_ARTICLE + r"(an?)\s+(\w)", agree, text, flags=re.IGNORECASE)
    return text.replace(_ARTICLE, "")


def _tidy(text: str) -> str:
    """Spaces and punctuation left behind by a removed word: "a , dark, sea" -> "a, sea"."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,;.:!?])", r"\1", text)
    text = re.sub(r"([,;])(\s*[,;])+", r"\1", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
    return text.strip(" ,;").strip()


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """The "redmean" colour difference: close to how far apart people see two sRGB colours,
    without a colour-space library."""
    r_mean = (a[0] + b[0]) / 2
    dr, dg, db = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    return float((2 + r_mean / 256) * dr * dr + 4 * dg * dg + (2 + (255 - r_mean) / 256) * db * db)


def colour_name(hex_colour: str) -> str:
    """The nearest named colour to `#rrggbb` ("#ff6600" -> "orange")."""
    value = hex_colour.lstrip("#")
    rgb = (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))
    return min(COLOURS, key=lambda named: _distance(rgb, named[1]))[0]


def _and(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _fresh(prompt: str, words: Iterable[str], avoid: Sequence[str]) -> list[str]:
    """The words the prompt does not say yet, each once, none that the brand avoids."""
    out: list[str] = []
    for word in words:
        word = word.strip()
        if not word or mentions(prompt, word) or any(w.lower() == word.lower() for w in out):
            continue
        if any(mentions(word, a) for a in avoid):
            continue
        out.append(word)
    return out


def _palette(brand: Brand, prompt: str, avoid: Sequence[str]) -> str | None:
    names: list[str] = []
    for hex_colour in brand.palette:
        name = colour_name(hex_colour)
        # A colour whose name holds a word to avoid ("dark …") is given by its code instead.
        if any(mentions(name, a) for a in avoid):
            name = hex_colour.lower()
        if name not in names and not mentions(prompt, name):
            names.append(name)
    return f"{_and(names)} colour palette" if names else None


def _music(brand: Brand, prompt: str, avoid: Sequence[str]) -> list[str]:
    music = brand.music
    if music is None:
        return []
    words = _fresh(prompt, [*music.genres, *music.moods], avoid)
    added = [", ".join(words)] if words else []
    if music.bpm is not None and not _TEMPO.search(prompt):
        low, high = sorted(music.bpm)
        added.append(f"{low} bpm" if low == high else f"{low}–{high} bpm")
    return added


def apply_brand(brand: Brand, prompt: str, kind: str, *, negative_input: bool) -> Branded:
    """`prompt` as the model should get it under `brand`, for a generation of `kind` (audio,
    image, video); `negative_input` says whether the model has a negative prompt input."""
    avoid = [a.strip() for a in brand.avoid if a.strip()]
    kept, removed = _strip(prompt, avoid)
    additions: list[str] = []
    if kind == "audio":
        additions += _music(brand, kept, avoid)
    style = _fresh(kept, brand.style_keywords, avoid)
    if style:
        additions.append(f"{', '.join(style)} style")
    if kind in ("image", "video"):
        palette = _palette(brand, kept, avoid)
        if palette:
            additions.append(palette)
    sent = ", ".join(part for part in (kept, *additions) if part)
    applied = list(additions)
    if removed:
        applied.append(f"left out: {', '.join(removed)}")
    negative = ", ".join(avoid) if negative_input and avoid else None
    if negative:
        applied.append(f"negative prompt: {negative}")
    return Branded(prompt_sent=sent, negative_prompt=negative, applied=applied)


def merge_negative(given: str | None, avoid: str) -> str:
    """A caller's own negative prompt with the brand's words added (those it does not say yet),
    so applying the brand twice (a retry of a branded asset) adds nothing."""
    words = [w.strip() for w in avoid.split(",") if w.strip()]
    base = (given or "").strip()
    extra = [w for w in words if not mentions(base, w)]
    return ", ".join(part for part in (base, *extra) if part)
