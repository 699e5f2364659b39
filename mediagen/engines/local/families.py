"""Family name (a catalog entry's `local.family`) -> the module and class that runs it.

Imported by name on first use, so listing models costs no import of a family's libraries.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache

from mediagen.engines.local.family import Family

FAMILIES: dict[str, tuple[str, str]] = {
    "musicgen": ("mediagen.engines.local.musicgen", "MusicgenFamily"),
    "musicgen-melody": ("mediagen.engines.local.musicgen", "MusicgenMelodyFamily"),
    "stable-audio": ("mediagen.engines.local.stable_audio", "StableAudioFamily"),
    "riffusion": ("mediagen.engines.local.riffusion", "RiffusionFamily"),
    "sd-image": ("mediagen.engines.local.sd_image", "TextToImageFamily"),
    "wan": ("mediagen.engines.local.wan", "WanFamily"),
}
INSTALL_HINT = "pip install 'mediagen[local]'"


@cache
def family(name: str) -> Family:
    module, cls = FAMILIES[name]
    instance: Family = getattr(importlib.import_module(module), cls)()
    return instance


def missing_modules(name: str) -> list[str]:
    """The libraries `name` needs that are not installed (found without importing them)."""
    return [m for m in family(name).requires if importlib.util.find_spec(m) is None]
