"""Opening media files for reading, the one way every media function does it.

FFmpeg's default probe reads up to 5 MB and analyses up to 5 s of streams before it answers; for
the files we see (WAV, MP3, MP4, WebM from models and our own encoders) the headers say all we
need, and the full probe cost ~30 ms per open, three opens per ingest (bench/webhooks.py). A small
probe window answers in ~2 ms; anything it cannot settle, decoding settles anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

# Decoding sound lives with the meter (the lowest layer that reads audio); re-exported here for
# the media functions that draw from the same pass.
from mediagen.loudness.meter import audio_blocks

__all__ = ["PROBE_OPTIONS", "audio_blocks", "open_input"]

# `max_size` is the WAV demuxer's packet size (default 4096 bytes): 64 KiB packets mean a sixteenth
# of the per-packet Python work when probing and decoding PCM (~3 ms of ~20 per 10 s stereo file);
# much larger packets made the decoder's frames, and so its resampling, slower. Demuxers without
# the option ignore it.
PROBE_OPTIONS = {"probesize": "65536", "analyzeduration": "500000", "max_size": "65536"}


def open_input(path: Path | str) -> Any:
    return av.open(str(path), options=dict(PROBE_OPTIONS))
