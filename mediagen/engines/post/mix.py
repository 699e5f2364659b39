"""The sound side of a composition: the clips' own sound laid on the timeline, the music bed
(trimmed or looped, faded, placed), and the two mixed, replaced or ducked. Everything is float32
stereo at 48 kHz held whole: a 30 s mix is 11 MB, and mastering needs the whole programme anyway
(integrated loudness is a measurement over all of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from mediagen.engines.base import InputError
from mediagen.engines.post.recipe import Music
from mediagen.engines.post.timeline import Span

Array = np.ndarray
RATE = 48_000
SEAM = 0.05  # the loop point is crossfaded over this long: shorter clicks, longer smears a beat
DECLICK = 0.003  # ramps at hard cuts: a waveform cut mid-swing is an audible click
CUT_FADE = 1.0  # music cut short by the end of the edit fades over at least this long
DUCK_DB = -12.0  # how far the music goes down under the clips' own sound
DUCK_FLOOR_DB = -50.0  # clip sound quieter than this (10 ms RMS, dBFS) does not duck the music
DUCK_BLOCK = RATE // 100  # the envelope follower's step: 10 ms
DUCK_LOOKAHEAD = 0.06  # the music starts down this early, so the first syllable is not masked
DUCK_HOLD = 0.25  # and stays down this long after, so it does not pump between words
DUCK_ATTACK = 0.03  # time constants of the gain's smoothing
DUCK_RELEASE = 0.35


def read_audio(path: Path, *, skip: float, limit: int, origin: float | None) -> tuple[Array, bool] | None:
    """Up to `limit` samples of `path`'s first audio stream, 48 kHz stereo float32 (channels ×
    frames), starting `skip` s in; and whether the stream goes on past them. None: no audio.

    With `origin` (a video clip's), `skip` is on the file's own timeline from that origin, so the
    sound stays in sync with the picture whatever the encoder's priming or the audio's start;
    without it (a music file), it counts from the first decoded sample, which is what a listener
    hears as the start.
    """
    try:
        container = av.open(str(path))
    except av.FFmpegError:
        return None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if origin is not None and skip > 2.0 and stream.time_base:
            container.seek(int((origin + skip - 1.0) / stream.time_base), stream=stream, backward=True)
        resampler: av.AudioResampler | None = None
        mono = False
        chunks: list[Array] = []
        lead: int | None = None  # samples to drop before `skip` (negative: silence to add)
        have = 0
        ended = True
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames, None)
            except av.FFmpegError:
                frame = None  # a damaged tail: keep what decoded
            if resampler is None:
                if frame is None:
                    break
                mono = frame.layout.nb_channels == 1
                resampler = av.AudioResampler(format="fltp", layout="mono" if mono else "stereo", rate=RATE)
                if origin is None:
                    lead = round(skip * RATE)
                else:
                    first = frame.time - origin if frame.time is not None else 0.0
                    lead = round((skip - first) * RATE)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().astype(np.float32, copy=False))
                have += out.samples
            if frame is None:
                break
            if lead is not None and have >= lead + limit:
                ended = False
                break
        if resampler is None or lead is None:
            return np.zeros((2, 0), np.float32), False
        data = np.concatenate(chunks, axis=1) if chunks else np.zeros((1 if mono else 2, 0), np.float32)
        if lead >= 0:
            data = data[:, lead : lead + limit]
        else:
            data = np.concatenate([np.zeros((data.shape[0], -lead), np.float32), data], axis=1)[:, :limit]
        if mono:
            data = np.repeat(data, 2, axis=0)
        more = not ended or have - lead > limit
        return np.ascontiguousarray(data, dtype=np.float32), more


def equal_power(count: int) -> tuple[Array, Array]:
    """Fade-in and fade-out gains whose powers sum to one at every sample."""
    theta = (np.arange(count, dtype=np.float64) + 0.5) / count * (np.pi / 2)
    return np.sin(theta).astype(np.float32), np.cos(theta).astype(np.float32)


def clip_track(spans: Sequence[Span], sounds: dict[int, Array], samples: int) -> Array:
    """The clips' own sound on the output timeline: equal-power crossfades where the pictures
    crossfade, short ramps at hard cuts."""
    out = np.zeros((2, samples), np.float32)
    ramp = max(1, round(DECLICK * RATE))
    for span in spans:
        sound = sounds.get(span.index)
        if sound is None:
            continue
        at = round(span.start * RATE)
        if at >= samples:
            continue
        part = sound[:, : samples - at].copy()
        n = part.shape[1]
        fade_in = min(n, round(span.fade_in * RATE)) if span.fade_in else min(n, ramp) if at > 0 else 0
        if fade_in:
            part[:, :fade_in] *= equal_power(fade_in)[0] if span.fade_in else np.linspace(0, 1, fade_in)
        if at + sound.shape[1] <= samples:  # its end is heard: fade it (a clip cut by the end is not)
            fade_out = min(n, round(span.fade_out * RATE) if span.fade_out else ramp)
            tail = equal_power(fade_out)[1] if span.fade_out else np.linspace(1, 0, fade_out)
            part[:, n - fade_out :] *= tail
        out[:, at : at + n] += part
    return out


def loop(region: Array, samples: int) -> Array:
    """`region` repeated to `samples`, each return to its head crossfaded (equal power, SEAM long)
    into its tail, so the waveform never jumps at the loop point."""
    n = region.shape[1]
    seam = min(round(SEAM * RATE), n // 4)
    if seam < 1:
        return np.tile(region, (1, -(-samples // max(1, n))))[:, :samples]
    rise, fall = equal_power(seam)
    joined = region[:, :seam] * rise + region[:, n - seam :] * fall
    unit = np.concatenate([joined, region[:, seam : n - seam]], axis=1)
    repeats = -(-(samples - (n - seam)) // unit.shape[1])
    return np.concatenate([region[:, : n - seam], np.tile(unit, (1, max(0, repeats)))], axis=1)[:, :samples]


def fade(data: Array, fade_in: float, fade_out: float) -> None:
    """Raised-cosine fades in place, shortened together if they would overlap."""
    n = data.shape[1]
    first, last = round(fade_in * RATE), round(fade_out * RATE)
    if first + last > n:
        k = n / (first + last)
        first, last = int(first * k), int(last * k)
    if first:
        data[:, :first] *= (0.5 - 0.5 * np.cos(np.pi * (np.arange(first) + 0.5) / first)).astype(np.float32)
    if last:
        data[:, n - last :] *= (0.5 + 0.5 * np.cos(np.pi * (np.arange(last) + 0.5) / last)).astype(np.float32)


def music_bed(music: Music, samples: int, *, must_fill: bool) -> Array:
    """The music on a `samples`-long track: from `start` s into the file, at `offset` s into the
    track, looped or trimmed, faded. A bed the edit cuts short fades over at least CUT_FADE so it
    ends on time rather than mid-phrase. `must_fill`: a bed too short to reach the end (and not
    looping) is an error, not silence (an audio master is nothing but the bed)."""
    if music.offset < 0:
        raise InputError("the music cannot start before the edit", field="music.offset")
    if music.start < 0:
        raise InputError("the start point cannot be negative", field="music.start")
    if min(music.fade_in, music.fade_out) < 0:
        field = "music.fade_in" if music.fade_in < 0 else "music.fade_out"
        raise InputError("fades cannot be negative", field=field)
    offset = round(music.offset * RATE)
    if offset >= samples:
        raise InputError("the music would start after the edit ends", field="music.offset")
    room = samples - offset
    got = read_audio(music.path, skip=music.start, limit=room, origin=None)
    if got is None:
        raise InputError("this file has no audio", field="music.audio_id")
    bed, cut = got
    if bed.shape[1] == 0:
        raise InputError("the start point is past the end of the music", field="music.start")
    if bed.shape[1] < room:
        if music.loop:
            bed, cut = loop(bed, room), True
        elif must_fill:
            raise InputError(
                f"the music has {bed.shape[1] / RATE:.2f} s from its start point; loop it or ask for less",
                field="length",
            )
    bed = bed.copy()
    fade(bed, music.fade_in, max(music.fade_out, CUT_FADE) if cut else music.fade_out)
    out = np.zeros((2, samples), np.float32)
    out[:, offset : offset + bed.shape[1]] = bed
    return out


def duck_gain(voice: Array) -> Array:
    """Per-sample music gain: DUCK_DB down wherever the clips have sound, reached smoothly (an
    envelope follower on 10 ms blocks, with look-ahead and hold so it neither clips the first
    syllable nor pumps between words)."""
    samples = voice.shape[1]
    blocks = -(-samples // DUCK_BLOCK)
    mono = np.zeros(blocks * DUCK_BLOCK, np.float32)
    mono[:samples] = voice.mean(axis=0)
    rms = np.sqrt(np.mean(mono.reshape(blocks, DUCK_BLOCK) ** 2, axis=1))
    loud = rms > 10 ** (DUCK_FLOOR_DB / 20)
    ahead, hold = round(DUCK_LOOKAHEAD * 100), round(DUCK_HOLD * 100)
    padded = np.concatenate([np.zeros(hold), loud, np.zeros(ahead)])
    window = np.cumsum(np.concatenate([[0.0], padded]))
    near = (window[hold + ahead + 1 :] - window[:blocks]) > 0  # any loud block in [b - hold, b + ahead]
    target = np.where(near, 10 ** (DUCK_DB / 20), 1.0)
    attack, release = 1 - np.exp(-0.01 / DUCK_ATTACK), 1 - np.exp(-0.01 / DUCK_RELEASE)
    gain = np.empty(blocks)
    g = 1.0
    for b in range(blocks):
        g += (target[b] - g) * (attack if target[b] < g else release)
        gain[b] = g
    centres = (np.arange(blocks) + 0.5) * DUCK_BLOCK
    return np.interp(np.arange(samples), centres, gain).astype(np.float32)


def mix(voice: Array | None, bed: Array | None, mode: str) -> Array | None:
    """The programme: the bed alone (`replace`), the clips' sound over the ducked bed (`duck`),
    or whichever of the two exists. A short ramp at the end: an edit may stop mid-waveform."""
    if bed is None:
        out = voice
    elif voice is None or mode == "replace":
        out = bed
    elif mode == "duck":
        out = voice + bed * duck_gain(voice)
    else:
        raise InputError(f"mode is 'replace' or 'duck', not {mode!r}", field="music.mode")
    if out is not None:
        ramp = min(out.shape[1], round(DECLICK * RATE))
        out[:, out.shape[1] - ramp :] *= np.linspace(1, 0, ramp, dtype=np.float32)
    return out
