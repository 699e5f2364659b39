"""Prompt reading: genre, tempo, key, instruments and palette come from the words; the rest from the seed."""

from __future__ import annotations

import pytest

from mediagen.engines.synth import vocabulary
from mediagen.engines.synth.patterns import BASS_FIGURES, COMP_FIGURES, DRUM_PATTERNS
from mediagen.engines.synth.prompt import effective_seed, make_plan
from mediagen.engines.synth.styles import FALLBACK_GENRES, STYLES
from mediagen.engines.synth.voices import TONAL


@pytest.mark.parametrize(
    ("prompt", "genre"),
    [
        ("upbeat electronic dance music with heavy bass", "edm"),
        ("ambient lo-fi hip hop beats", "lofi"),
        ("cinematic orchestral", "cinematic"),
        ("acoustic folk", "folk"),
        ("dark techno 128 bpm", "techno"),
        ("smooth jazz for a cocktail bar", "jazz"),
        ("retro synthwave night drive", "synthwave"),
        ("drum and bass", "dnb"),
        ("meditation drone", "ambient"),
    ],
)
def test_genre_from_words(prompt: str, genre: str) -> None:
    assert make_plan(prompt, 1).genre == genre


def test_explicit_bpm_wins_and_parameter_wins_over_prompt() -> None:
    assert make_plan("dark techno 128 bpm", 5).bpm == 128
    assert make_plan("dark techno 128 bpm", 5).tempo_source == "prompt"
    plan = make_plan("dark techno 128 bpm", 5, bpm=100)
    assert (plan.bpm, plan.tempo_source) == (100, "parameter")
    assert make_plan("lofi at 300 bpm", 1).bpm == 220  # clamped to the supported range


def test_tempo_stays_in_genre_range_and_seed_varies_it() -> None:
    lo, hi = STYLES["lofi"].groove.bpm
    tempos = {make_plan("lofi hip hop", seed).bpm for seed in range(1, 30)}
    assert all(lo <= t <= hi for t in tempos)
    assert len(tempos) > 3


def test_mood_chooses_mode_and_explicit_key_wins() -> None:
    assert make_plan("dark sad cinematic", 3).mode in ("minor", "harmonic_minor", "phrygian", "dorian")
    assert make_plan("happy sunny pop", 3).mode in ("major", "lydian", "mixolydian")
    plan = make_plan("epic trailer in F# minor", 3)
    assert (plan.key, plan.mode) == ("F#", "minor")
    assert make_plan("ballad in Bb major", 9).key == "Bb"


def test_instrument_words_override_roles() -> None:
    plan = make_plan("lofi beats with rhodes and flute", 2)
    assert plan.chords == "epiano" and plan.melody == "flute"
    assert make_plan("trap with 808s", 2).bass == "808"
    assert make_plan("edm without drums", 2).drums is None
    assert "kick" in make_plan("edm", 2).instruments
    assert make_plan("upbeat dance with heavy bass", 2).bass_boost


def test_palette_from_colour_and_scene_words() -> None:
    plan = make_plan("teal and gold abstract", 1)
    assert plan.palette[:2] == ("teal", "gold")
    assert "magenta" in make_plan("neon city at night", 1).palette
    assert len(make_plan("something", 4).colours) >= 2


def test_seed_zero_derives_a_stable_seed_from_the_prompt() -> None:
    a = effective_seed("Upbeat   EDM", 0)
    assert a == effective_seed("upbeat edm", 0) and a > 0
    assert effective_seed("upbeat edm", 42) == 42
    assert make_plan("upbeat edm", 0).seed == a
    with pytest.raises(ValueError):
        effective_seed("x", -1)


def test_plans_are_deterministic() -> None:
    assert make_plan("cinematic orchestral", 11) == make_plan("cinematic orchestral", 11)
    meta = make_plan("cinematic orchestral", 11).as_metadata()
    assert {"genre", "bpm", "key", "mode", "instruments", "energy", "seed", "palette"} <= set(meta)


def test_genre_tables_agree() -> None:
    """The style presets, the genre words and the pattern/voice tables name the same things."""
    assert list(vocabulary.GENRE_WORDS) == list(STYLES)  # same order: ties go to the earlier genre
    assert set(FALLBACK_GENRES) <= set(STYLES)
    for style in STYLES.values():
        assert style.groove.drums is None or style.groove.drums in DRUM_PATTERNS, style.name
        assert style.groove.bass_pattern in {*BASS_FIGURES, "rolling"}, style.name
        assert style.groove.comp in {*COMP_FIGURES, "pad", "ostinato", "broken"}, style.name
        band = style.band
        assert {*band.bass, *band.chords, *band.melody} <= set(TONAL), style.name
        assert set(band.texture) <= {"riser", "vinyl", "wind"}, style.name


def test_mood_palettes_name_known_colours() -> None:
    for mood, palettes in vocabulary.MOOD_PALETTES.items():
        assert palettes, mood
        for palette in palettes:
            assert len(palette) == 4 and set(palette) <= set(vocabulary.COLOURS), (mood, palette)
