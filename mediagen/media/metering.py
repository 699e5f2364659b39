"""The loudness meter fed from our own decode pass: alone (`measure_loudness`), or riding along
another reader of the same sound (`MeterTap`, given to `waveform_peaks` at ingest).

`loudness.measure_file` opens the file with FFmpeg's full probe and decodes it for itself; at
ingest that was a second open and a second decode of every audio asset, right after the waveform's
(bench/webhooks.py). The blocks here are the ones `measure_file` feeds (planar float at the
stream's own rate and layout, about a second each), so the figures are the same.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from mediagen.loudness import Measurement
from mediagen.loudness.meter import LoudnessMeter
from mediagen.media.containers import audio_blocks, open_input
from mediagen.media.errors import MediaError


class MeterTap:
    """A loudness meter that takes decoded blocks as they come (an `AudioTap`). A failure of the
    meter does not stop the pass it rides along (the waveform is still drawn): `result` raises it."""

    def __init__(self) -> None:
        self._meter: LoudnessMeter | None = None
        self._error: Exception | None = None

    def __call__(self, block: np.ndarray, rate: int) -> None:
        if self._error is not None:
            return
        try:
            if self._meter is None:
                self._meter = LoudnessMeter(rate, block.shape[0])
            self._meter.feed(block)
        except Exception as exc:  # kept for `result`, which the caller handles
            self._error = exc

    def result(self) -> Measurement:
        """The measurement of everything fed so far (all None for a stream without samples)."""
        if self._error is not None:
            raise self._error
        return self._meter.result() if self._meter is not None else Measurement(None, None, None)


def measure_loudness(path: Path) -> Measurement | None:
    """Measure a file's first audio stream; None when it has none."""
    try:
        container = open_input(path)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"not a readable media file: {exc}") from exc
    with container:
        if not container.streams.audio:
            return None
        tap = MeterTap()
        try:
            for block, rate in audio_blocks(container, container.streams.audio[0]):
                tap(block, rate)
        except av.FFmpegError as exc:
            raise MediaError(f"corrupt audio: {exc}") from exc
    return tap.result()
