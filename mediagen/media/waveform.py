"""Waveform peaks in audiowaveform's JSON v2 format, computed server-side while decoding.

Why server-side: browsers that decode whole files to draw a waveform run out of memory on long
audio (wavesurfer.js#1001); with peaks + duration the player can stream. The decoder output is
consumed in batches and reduced to min/max per block at once, so memory is flat for any length.
Values are scaled by 2^(bits-1) of full scale, never normalised per file, so a quiet clip looks
quiet next to a loud one in a gallery.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

from mediagen.media.containers import audio_blocks, open_input
from mediagen.media.errors import MediaError

MAX_LENGTH = 4000  # min/max pairs; longer files get more samples per pixel


class _Peaks:
    """Streaming min/max per `spp` samples."""

    def __init__(self, spp: int) -> None:
        self.spp = spp
        self.carry = np.zeros(0, dtype=np.float32)
        self.mins: list[np.ndarray] = []
        self.maxs: list[np.ndarray] = []

    def feed(self, mono: np.ndarray) -> None:
        buf = np.concatenate([self.carry, mono]) if len(self.carry) else mono
        whole = len(buf) // self.spp * self.spp
        if whole:
            blocks = buf[:whole].reshape(-1, self.spp)
            self.mins.append(blocks.min(axis=1))
            self.maxs.append(blocks.max(axis=1))
        self.carry = buf[whole:].copy()

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self.carry):
            self.mins.append(np.array([self.carry.min()], dtype=np.float32))
            self.maxs.append(np.array([self.carry.max()], dtype=np.float32))
            self.carry = np.zeros(0, dtype=np.float32)
        if not self.mins:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        return np.concatenate(self.mins), np.concatenate(self.maxs)


def _merge(mins: np.ndarray, maxs: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    pad = (-len(mins)) % factor
    if pad:
        mins = np.concatenate([mins, np.full(pad, mins[-1], dtype=mins.dtype)])
        maxs = np.concatenate([maxs, np.full(pad, maxs[-1], dtype=maxs.dtype)])
    return mins.reshape(-1, factor).min(axis=1), maxs.reshape(-1, factor).max(axis=1)


AudioTap = Callable[[np.ndarray, int], None]
"""Takes each block a decode pass yields (planar float32, channels × frames) and its sample rate."""


def waveform_peaks(
    path: Path,
    *,
    pixels_per_second: int = 100,
    bits: int = 8,
    max_length: int = MAX_LENGTH,
    tap: AudioTap | None = None,
) -> dict[str, Any]:
    """audiowaveform v2 JSON (mono mix) for an audio file or a video's first audio stream.

    `tap` sees every decoded block too, in order, so another reader of the same sound (the
    loudness meter at ingest) needs no decode of its own; an exception it raises ends the pass.
    """
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    if pixels_per_second < 1 or max_length < 1:
        raise ValueError("pixels_per_second and max_length must be positive")
    try:
        container = open_input(path)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError(f"not a readable media file: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise MediaError("no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        if not rate:
            raise MediaError("audio stream has no sample rate")
        estimate = container.duration / av.time_base if container.duration else 0.0
        spp = max(1, round(rate / pixels_per_second), math.ceil(estimate * rate / max_length))
        peaks = _Peaks(spp)
        decoded = 0
        try:
            for block, block_rate in audio_blocks(container, stream):
                peaks.feed(block.mean(axis=0, dtype=np.float32))
                decoded += block.shape[1]
                if tap is not None:
                    tap(block, block_rate)
        except av.FFmpegError as exc:
            raise MediaError(f"corrupt audio: {exc}") from exc
    if decoded == 0:
        raise MediaError("no decodable audio")
    mins, maxs = peaks.finish()
    if len(mins) > max_length:  # the duration estimate was short (e.g. VBR without header)
        factor = math.ceil(len(mins) / max_length)
        mins, maxs = _merge(mins, maxs, factor)
        spp *= factor
    scale = 2 ** (bits - 1)
    lo, hi = -scale, scale - 1
    data = np.empty(2 * len(mins), dtype=np.int32)
    data[0::2] = np.clip(np.round(mins * scale), lo, hi)
    data[1::2] = np.clip(np.round(maxs * scale), lo, hi)
    return {
        "version": 2,
        "channels": 1,
        "sample_rate": int(rate),
        "samples_per_pixel": int(spp),
        "bits": bits,
        "length": int(len(mins)),
        "data": data.tolist(),
    }
