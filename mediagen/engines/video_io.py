"""H.264 in MP4 the way every engine of ours writes it (the synth's clips, local models' frames).

The choices: yuv420p (what every browser decodes), BT.709 matrix
and tags (HD content; untagged files get guessed as BT.601 by some players and shift hue),
`+faststart` so playback starts before the download ends, x264 single-threaded with B-frames off
so the same frames give the same bytes, and nothing time-dependent in the container. The stream
runs at a constant frame rate and its last frame ends at exactly frames / fps.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

CONTENT_TYPE = "video/mp4"
TICKS = 1000  # codec time base is 1/(fps·TICKS), so the last frame can end exactly on time
# Lower than the synth engine's 23: a neural clip costs GPU minutes, a few more bytes keep its
# fine texture (hair, foliage, film grain) from turning into x264's smudge.
CRF = 18
BT709 = av.video.reformatter.Colorspace.ITU709


def add_h264_stream(container: Any, *, width: int, height: int, fps: int, crf: int) -> Any:
    """An x264 stream on `container`: yuv420p, BT.709 tags, single-threaded without B-frames (the
    same frames give the same bytes), a key frame every two seconds."""
    stream = container.add_stream(
        "libx264",
        rate=fps,
        options={
            "preset": "veryfast",
            "crf": str(crf),
            "x264-params": "bframes=0:threads=1",
            "g": str(fps * 2),
        },
    )
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    cc = stream.codec_context
    cc.time_base = Fraction(1, fps * TICKS)
    cc.thread_count = 1
    cc.colorspace = BT709
    cc.color_primaries = 1  # BT.709
    cc.color_trc = 1
    return stream


class HeldMuxer:
    """Muxes a video stream's packets one behind, so the last one's duration can be set before
    it goes out: without it the muxer guesses, and the file's length drifts from frames / fps."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.last: Any = None

    def mux(self, packets: Any) -> None:
        for packet in packets:
            if self.last is not None:
                self.container.mux(self.last)
            self.last = packet

    def close(self, end_pts: int) -> None:
        """Mux the held packet, ending the stream at `end_pts` (in the codec's time base)."""
        if self.last is not None:
            self.last.duration = max(1, end_pts - int(self.last.pts or 0))
            self.container.mux(self.last)
            self.last = None


def write_mp4(frames: np.ndarray, path: Path, *, fps: int) -> str:
    """Write RGB frames (T, H, W, 3) uint8 to `path` as H.264 at `fps`; returns the MIME type.

    Width and height must be even: yuv420p stores colour at half resolution in both directions.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    count, height, width = frames.shape[:3]
    if count < 1:
        raise ValueError("no frames to write")
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
    if not 1 <= fps <= 240:
        raise ValueError(f"fps must be between 1 and 240, got {fps}")

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        container.metadata.clear()
        stream = add_h264_stream(container, width=width, height=height, fps=fps, crf=CRF)
        cc = stream.codec_context
        held = HeldMuxer(container)
        for i in range(count):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            vf = vf.reformat(format="yuv420p", dst_colorspace=BT709)
            vf.pts = i * TICKS
            vf.time_base = cc.time_base
            held.mux(stream.encode(vf))
        held.mux(stream.encode(None))
        held.close(count * TICKS)
    return CONTENT_TYPE


__all__ = ["CONTENT_TYPE", "HeldMuxer", "add_h264_stream", "write_mp4"]
