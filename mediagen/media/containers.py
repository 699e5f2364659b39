"""Opening media files for reading, and decoding their sound, the one way every media function
does it.

FFmpeg's default probe reads up to 5 MB and analyses up to 5 s of streams before it answers; for
the files we see (WAV, MP3, MP4, WebM from models and our own encoders) the headers say all we
need, and the full probe cost ~30 ms per open, three opens per ingest (bench/webhooks.py). A small
probe window answers in ~2 ms; anything it cannot settle, decoding settles anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

PROBE_OPTIONS = {"probesize": "65536", "analyzeduration": "500000"}


def open_input(path: Path | str) -> Any:
    return av.open(str(path), options=dict(PROBE_OPTIONS))


def audio_blocks(container: Any, stream: Any) -> Iterator[tuple[np.ndarray, int]]:
    """Decode `stream` as planar float32 blocks (channels × frames, ±1 full scale) of about a
    second each, with their sample rate: converted in sample format only, at the stream's own
    rate and channel layout. Every reader of decoded sound takes it from here, so one decode can
    feed several of them (ingest draws the waveform and meters the loudness in one pass)."""
    resampler: av.AudioResampler | None = None
    rate = 0
    pending: list[np.ndarray] = []
    frames = 0
    for frame in container.decode(stream):
        if resampler is None:
            rate = frame.sample_rate
            resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=rate)
        for converted in resampler.resample(frame):
            pending.append(converted.to_ndarray())
            frames += converted.samples
        if frames >= rate:
            yield np.concatenate(pending, axis=1), rate
            pending, frames = [], 0
    if resampler is not None:
        for converted in resampler.resample(None):
            pending.append(converted.to_ndarray())
    if pending:
        yield np.concatenate(pending, axis=1), rate
