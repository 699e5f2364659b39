"""Write float audio (any rate, mono or stereo) to MP3 (PyAV, libmp3lame) or 16-bit WAV.

MP3 length: the mp3 muxer writes a Xing/LAME header carrying the encoder delay and padding, and
FFmpeg-based decoders (and browsers) trim both, so the decoded file has exactly the samples we
encoded. The header is written on close, which needs a seekable file: we always write to a path.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

Array = np.ndarray
SR = 44_100  # the synth's rate, and the default

MP3_BITRATE = 192_000
AAC_BITRATE = 160_000
_FRAME_CHUNK = 1152 * 64


def _layout(samples: Array) -> str:
    if samples.shape[0] not in (1, 2):
        raise ValueError(f"{samples.shape[0]} channels: only mono and stereo are written")
    return "mono" if samples.shape[0] == 1 else "stereo"


def to_int16(samples: Array) -> Array:
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def write_wav(samples: Array, path: Path, *, rate: int = SR) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        step = 1 << 18
        for s in range(0, samples.shape[1], step):
            w.writeframes(to_int16(samples[:, s : s + step]).T.tobytes())


def audio_frames(samples: Array, *, chunk: int = _FRAME_CHUNK, rate: int = SR) -> Iterator[av.AudioFrame]:
    """Planar float frames with exact sample timestamps (encoders re-chunk them as they need)."""
    for s in range(0, samples.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, s : s + chunk], dtype=np.float32),
            format="fltp",
            layout=_layout(samples),
        )
        frame.sample_rate = rate
        frame.pts = s
        frame.time_base = Fraction(1, rate)
        yield frame


def write_mp3(samples: Array, path: Path, *, bitrate: int = MP3_BITRATE, rate: int = SR) -> None:
    with av.open(str(path), "w", format="mp3") as out:
        # LAME quality 7 ("fast, ok quality") encodes about twice as fast as the default 3, and at
        # 192 kbps the difference is not audible on these drafts; encode time dominates the render.
        stream = out.add_stream(
            "libmp3lame", rate=rate, layout=_layout(samples), options={"compression_level": "7"}
        )
        stream.bit_rate = bitrate
        for frame in audio_frames(samples, rate=rate):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def write_audio(samples: Array, path: Path, fmt: str, *, rate: int = SR) -> str:
    """Encode `samples` (channels × frames, float in [-1, 1]) and return the MIME type."""
    if fmt == "wav":
        write_wav(samples, path, rate=rate)
        return "audio/wav"
    if fmt == "mp3":
        write_mp3(samples, path, rate=rate)
        return "audio/mpeg"
    raise ValueError(f"unsupported audio format {fmt!r}")
