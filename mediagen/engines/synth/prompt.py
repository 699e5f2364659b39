"""Read a free-text prompt into a typed plan that the music, image and video renderers share.

The reading is keyword based on purpose: it is predictable, explainable in the metadata, and a
producer can steer it ("dark techno 128 bpm in F minor"). What the prompt leaves open, the seed
decides, always inside the chosen genre's vocabulary.

Seed convention: a seed of 0 (the catalog default) means "derive it from the prompt", so the same
prompt gives the same draft until the user asks for a variation; the effective seed is returned in
the plan so that any result can be reproduced exactly.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mediagen.engines.synth import vocabulary as vocab
from mediagen.engines.synth.patterns import drum_voices
from mediagen.engines.synth.styles import FALLBACK_GENRES, STYLES, Style
from mediagen.engines.synth.theory import MODES, NOTE_NAMES, pitch_class

MIN_BPM, MAX_BPM = 40, 220


@dataclass(frozen=True)
class Plan:
    """Everything the renderers need to know, decided once from prompt + seed."""

    prompt: str
    seed: int
    genre: str
    bpm: int
    tempo_source: str  # "parameter" | "prompt" | "genre"
    tonic: int  # pitch class 0–11
    mode: str
    drums: str | None  # drum pattern id, None for drumless
    bass: str
    chords: str
    melody: str
    texture: str | None
    energy: float  # 0–1
    swing: float
    bass_boost: bool
    arp: bool
    moods: tuple[str, ...]
    palette: tuple[str, ...]  # colour names
    colours: tuple[tuple[int, int, int], ...]
    palette_modifiers: tuple[str, ...]
    motifs: tuple[str, ...]
    style: Style = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return NOTE_NAMES[self.tonic]

    @property
    def instruments(self) -> tuple[str, ...]:
        """Every voice that can sound, drums first (for the metadata and the UI)."""
        names = list(drum_voices(self.drums)) if self.drums else []
        names += [self.bass, self.chords, self.melody]
        if self.arp:
            names.append("arp")
        if self.texture:
            names.append(self.texture)
        return tuple(dict.fromkeys(names))

    def as_metadata(self) -> dict[str, Any]:
        return {
            "genre": self.genre,
            "bpm": self.bpm,
            "tempo_source": self.tempo_source,
            "key": self.key,
            "mode": self.mode,
            "scale": f"{self.key} {self.mode.replace('_', ' ')}",
            "instruments": list(self.instruments),
            "energy": round(self.energy, 2),
            "moods": list(self.moods),
            "palette": list(self.palette),
            "seed": self.seed,
        }


def effective_seed(prompt: str, seed: int) -> int:
    """0 means "derive from the prompt": a stable 31-bit hash of the normalised text (never 0)."""
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if seed:
        return seed
    text = " ".join(prompt.lower().split())
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
    return value or 1


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """Independent random streams per purpose, so adding a choice in one place moves nothing else."""
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def normalise(prompt: str) -> str:
    text = prompt.lower().replace("-", " ").replace("_", " ").replace("&", " & ")
    text = re.sub(r"[^a-z0-9#&\s]", " ", text)
    return " " + " ".join(text.split()) + " "


def _has(text: str, phrase: str) -> bool:
    return f" {phrase} " in text


def _count(text: str, phrases: tuple[str, ...]) -> int:
    return sum(_has(text, p) for p in phrases)


def _first_index(text: str, phrases: tuple[str, ...]) -> int:
    hits = [text.find(f" {p} ") for p in phrases if _has(text, p)]
    return min(hits) if hits else 1 << 30


def _explicit_bpm(text: str) -> int | None:
    m = re.search(r"(\d{2,3})\s*(?:bpm|beats per minute)\b", text) or re.search(r"\bbpm\s*(\d{2,3})\b", text)
    return int(m.group(1)) if m else None


def _explicit_key(text: str) -> tuple[int, str | None] | None:
    """ "in D minor", "F# dorian", "Bb major", "key of A" → (pitch class, mode or None)."""
    modes = "|".join(
        sorted((*MODES, "harmonic minor", "maj", "min", "aeolian", "ionian"), key=len, reverse=True)
    )
    m = re.search(rf"\b([a-g])\s?(#|sharp|b|flat)?\s({modes})\b", text)
    if m:
        name = m.group(1) + {"#": "#", "sharp": "#", "b": "b", "flat": "b"}.get(m.group(2) or "", "")
        mode = m.group(3).replace(" ", "_")
        mode = {"maj": "major", "min": "minor", "aeolian": "minor", "ionian": "major"}.get(mode, mode)
        return pitch_class(name), mode
    m = re.search(r"\bkey of ([a-g])\s?(#|sharp|b|flat)?\b", text)
    if m:
        name = m.group(1) + {"#": "#", "sharp": "#", "b": "b", "flat": "b"}.get(m.group(2) or "", "")
        return pitch_class(name), None
    return None


def _pick_style(text: str, rng: np.random.Generator, valence: int, energy_words: int) -> Style:
    words = vocab.GENRE_WORDS
    scored = [(_count(text, words[s.name]), -_first_index(text, words[s.name]), s) for s in STYLES.values()]
    scored = [row for row in scored if row[0] > 0]
    if scored:
        return max(scored, key=lambda row: (row[0], row[1]))[2]
    if energy_words > 0 and valence >= 0:
        options: tuple[str, ...] = ("pop", "edm", "synthwave")
    elif energy_words > 0:
        options = ("techno", "cinematic", "dnb")
    elif energy_words < 0:
        options = ("ambient", "lofi", "classical") if valence >= 0 else ("ambient", "cinematic")
    elif valence < 0:
        options = ("cinematic", "synthwave", "lofi")
    else:
        options = FALLBACK_GENRES
    return STYLES[options[int(rng.integers(len(options)))]]


def _pick_mode(style: Style, valence: int, mellow: bool, rng: np.random.Generator) -> str:
    modes = style.harmony.modes
    if valence > 0:
        allowed = [m for m in modes if m in ("major", "lydian", "mixolydian")] or ["major", "lydian"]
    elif valence < 0:
        allowed = [m for m in modes if m in ("minor", "phrygian", "harmonic_minor", "dorian")] or [
            "minor",
            "harmonic_minor",
        ]
    elif mellow:
        allowed = [m for m in modes if m in ("dorian", "major", "lydian")] or ["dorian", "major"]
    else:
        allowed = list(modes)
    weights = np.array([1.0 / (i + 1) for i in range(len(allowed))])
    return allowed[int(rng.choice(len(allowed), p=weights / weights.sum()))]


def _pick_bpm(style: Style, text: str, rng: np.random.Generator) -> int:
    lo, hi = style.groove.bpm
    span = hi - lo
    if _count(text, vocab.FAST) > _count(text, vocab.SLOW):
        lo = lo + int(span * 0.6)
    elif _count(text, vocab.SLOW) > _count(text, vocab.FAST):
        hi = lo + int(span * 0.4)
    return int(rng.integers(lo, hi + 1))


def _palette(text: str, valence: int, mellow: bool, rng: np.random.Generator) -> tuple[str, ...]:
    named = [w for w in vocab.COLOURS if _has(text, w)]
    named.sort(key=lambda w: text.find(f" {w} "))
    scenes = sorted((s for s in vocab.SCENE_COLOURS if _has(text, s)), key=lambda s: text.find(f" {s} "))
    for scene in scenes:
        named.extend(c for c in vocab.SCENE_COLOURS[scene] if c not in named)
    if len(named) >= 2:
        return tuple(named[:5])
    mood = "bright" if valence > 0 else "dark" if valence < 0 else "mellow" if mellow else "neutral"
    options = vocab.MOOD_PALETTES[mood]
    base = options[int(rng.integers(len(options)))]
    return tuple(dict.fromkeys([*named, *base]))[:5]


def make_plan(prompt: str, seed: int = 0, *, bpm: int | None = None) -> Plan:
    """Decide genre, tempo, key, instrumentation and palette; `bpm` (a request parameter) wins."""
    seed = effective_seed(prompt, seed)
    text = normalise(prompt)
    rng = rng_for(seed, "plan")

    bright, dark, mellow_n = _count(text, vocab.BRIGHT), _count(text, vocab.DARK), _count(text, vocab.MELLOW)
    valence = (bright > dark) - (dark > bright)
    energy_words = _count(text, vocab.HIGH_ENERGY) - _count(text, vocab.LOW_ENERGY)
    style = _pick_style(text, rng, valence, energy_words)

    if bpm is not None:
        tempo, source = int(bpm), "parameter"
    elif (explicit := _explicit_bpm(text)) is not None:
        tempo, source = explicit, "prompt"
    else:
        tempo, source = _pick_bpm(style, text, rng), "genre"
    tempo = max(MIN_BPM, min(MAX_BPM, tempo))

    mode = _pick_mode(style, valence, mellow_n > 0, rng)
    tonic = int(rng.integers(12))
    if (key := _explicit_key(text)) is not None:
        tonic, explicit_mode = key
        mode = explicit_mode or mode

    band = style.band
    roles = {
        "bass": band.bass[int(rng.integers(len(band.bass)))],
        "chords": band.chords[int(rng.integers(len(band.chords)))],
        "melody": band.melody[int(rng.integers(len(band.melody)))],
        "texture": band.texture[int(rng.integers(len(band.texture)))] if band.texture else None,
    }
    claimed: set[str] = set()
    for words, role, voice in vocab.INSTRUMENT_WORDS:
        if role not in claimed and _count(text, words):
            roles[role] = voice
            claimed.add(role)

    drums = style.groove.drums
    if _count(text, vocab.NO_DRUMS):
        drums = None
    elif drums is None and _count(text, vocab.WANT_DRUMS):
        drums = "soft"

    energy = style.groove.energy + 0.12 * energy_words
    energy = float(min(1.0, max(0.05, energy)))
    moods = tuple(
        w
        for w in (*vocab.BRIGHT, *vocab.DARK, *vocab.MELLOW, *vocab.HIGH_ENERGY, *vocab.LOW_ENERGY)
        if _has(text, w)
    )
    palette = _palette(text, valence, mellow_n > 0, rng)
    motifs = tuple(m for m, words in vocab.MOTIFS.items() if _count(text, words))

    return Plan(
        prompt=prompt,
        seed=seed,
        genre=style.name,
        bpm=tempo,
        tempo_source=source,
        tonic=tonic,
        mode=mode,
        drums=drums,
        bass=roles["bass"] or band.bass[0],
        chords=roles["chords"] or band.chords[0],
        melody=roles["melody"] or band.melody[0],
        texture=roles["texture"],
        energy=energy,
        swing=style.groove.swing,
        bass_boost=_count(text, vocab.BASS_BOOST) > 0,
        arp=band.arp or _count(text, vocab.ARP_WORDS) > 0,
        moods=tuple(dict.fromkeys(moods)),
        palette=palette,
        colours=tuple(vocab.COLOURS[c] for c in palette),
        palette_modifiers=tuple(w for w in vocab.PALETTE_MODIFIERS if _has(text, w)),
        motifs=motifs,
        style=style,
    )
