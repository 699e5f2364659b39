"""What a file really is: kind, container, true MIME type, duration, streams. Never the extension.

Images go through Pillow (sniffed by magic bytes, then fully decoded so a truncated file fails
here rather than in a browser). Audio and video go through PyAV: we demux every packet (cheap: no
decoding) because header durations can lie — an MP3 without a Xing header only has a bitrate
guess, and a truncated download still carries the header of the whole file. When the header and
the packets agree, the header wins: it knows about encoder delay and padding (gapless playback).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import av
from PIL import Image, UnidentifiedImageError

from mediagen.media.containers import open_input
from mediagen.media.errors import MediaError

Kind = Literal["audio", "image", "video"]

_IMAGE_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (8, b"WEBP"),
    (0, b"BM"),
    (0, b"II*\x00"),
    (0, b"MM\x00*"),
)
_AUDIO_MIME = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "aiff": "audio/aiff",
    "caf": "audio/x-caf",
    "amr": "audio/amr",
}
_VIDEO_MIME = {
    "avi": "video/x-msvideo",
    "mpegts": "video/mp2t",
    "flv": "video/x-flv",
    "asf": "video/x-ms-asf",
    "ogg": "video/ogg",
    "mpeg": "video/mpeg",
}
_WEBM_CODECS = {"vp8", "vp9", "av1", "opus", "vorbis"}
_MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
_SHORT_NAMES = {
    "video/mp4": "mp4",
    "audio/mp4": "m4a",
    "video/quicktime": "mov",
    "video/3gpp": "3gp",
    "audio/3gpp": "3gp",
    "video/webm": "webm",
    "audio/webm": "webm",
    "video/x-matroska": "matroska",
    "audio/x-matroska": "matroska",
}


@dataclass(frozen=True)
class MediaInfo:
    kind: Kind
    container: str  # demuxer / image format name
    content_type: str  # the true MIME type
    size: int  # bytes
    duration: float | None = None  # seconds (audio/video)
    sample_rate: int | None = None
    channels: int | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    frames: int | None = None
    codecs: tuple[str, ...] = ()
    bitrate: int | None = None  # bits per second, averaged over the file

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["codecs"] = list(self.codecs)
        return data


def _looks_like_image(head: bytes) -> bool:
    return any(head[offset : offset + len(magic)] == magic for offset, magic in _IMAGE_MAGIC)


def _probe_image(path: Path, size: int) -> MediaInfo:
    try:
        with Image.open(path) as img:
            fmt = img.format or "unknown"
            frames = int(getattr(img, "n_frames", 1))
            img.load()
            width, height = img.size
            mime = Image.MIME.get(fmt) or f"image/{fmt.lower()}"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"unreadable image: {exc}") from exc
    return MediaInfo(
        kind="image",
        container=fmt.lower(),
        content_type=mime,
        size=size,
        width=width,
        height=height,
        frames=frames,
        codecs=(fmt.lower(),),
    )


def _has_xing(path: Path) -> bool:
    """Whether an MP3 carries a Xing/Info/VBRI frame count (its header duration is then exact)."""
    with path.open("rb") as fh:
        head = fh.read(16384)
    return any(tag in head for tag in (b"Xing", b"Info", b"VBRI"))


def _wav_missing_bytes(path: Path, size: int) -> int:
    """Bytes the WAV data chunk declares but the file lacks (FFmpeg sizes WAV by the file, not the header)."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return 0
    pos = 12
    order: Literal["little", "big"] = "little" if head[:4] == b"RIFF" else "big"
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], order)
        if chunk == b"data":
            if length in (0, 0xFFFFFFFF):  # written by a streaming encoder: size unknown
                return 0
            return max(0, pos + 8 + length - size)
        pos += 8 + length + (length & 1)
    return 0


def _is_cover_art(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _content_type(fmt: str, kind: Kind, codecs: tuple[str, ...], metadata: dict[str, str]) -> str:
    if fmt == _MP4:
        brand = metadata.get("major_brand", "").strip()
        if brand == "qt":
            return "video/quicktime"
        if brand.startswith("3gp") or brand.startswith("3g2"):
            return f"{kind}/3gpp"
        return "audio/mp4" if kind == "audio" else "video/mp4"
    if fmt == "matroska,webm":
        webm = all(c in _WEBM_CODECS for c in codecs)
        return f"{kind}/webm" if webm else f"{kind}/x-matroska"
    if kind == "audio" and fmt in _AUDIO_MIME:
        return _AUDIO_MIME[fmt]
    if kind == "video" and fmt in _VIDEO_MIME:
        return _VIDEO_MIME[fmt]
    return "application/octet-stream"


def _packet_span(container: av.container.InputContainer, stream: av.stream.Stream) -> tuple[float, int]:
    """(seconds covered by the packets actually present, packet count), checking on the way that
    the stream decodes: packets are fed to the decoder until one frame comes out (a file can demux
    yet hold nothing playable). Decoding in the same pass spares a second open of the file."""
    first: int | None = None
    end: int | None = None
    count = 0
    decoded = False
    for packet in container.demux(stream):
        if not decoded:
            decoded = bool(packet.decode())  # the empty flush packet at the end drains the decoder
        if packet.size == 0 or packet.pts is None:
            continue
        count += 1
        first = packet.pts if first is None else min(first, packet.pts)
        tail = packet.pts + (packet.duration or 0)
        end = tail if end is None else max(end, tail)
    if count and not decoded:
        raise MediaError("no decodable frames")
    if count == 0 or first is None or end is None or stream.time_base is None:
        return 0.0, count
    return float((end - first) * stream.time_base), count


def _probe_av(path: Path, size: int) -> MediaInfo:
    try:
        container = open_input(path)
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise MediaError(f"not a readable media file: {exc}") from exc
    with container:
        fmt = container.format.name
        if fmt.endswith("_pipe") or fmt == "image2":
            raise MediaError(f"unreadable image ({fmt})")
        videos = [s for s in container.streams.video if not _is_cover_art(s)]
        audios = list(container.streams.audio)
        if not videos and not audios:
            raise MediaError("no audio or video stream")
        kind: Kind = "video" if videos else "audio"
        primary = videos[0] if videos else audios[0]
        codecs = tuple(s.codec_context.codec.canonical_name for s in (*videos, *audios))
        metadata = dict(container.metadata)
        header = container.duration / av.time_base if container.duration else None
        if header is None and primary.duration is not None and primary.time_base is not None:
            header = float(primary.duration * primary.time_base)
        declared_frames = primary.frames or 0
        try:
            span, packets = _packet_span(container, primary)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"corrupt media: {exc}") from exc
        if packets == 0:
            raise MediaError("no media packets (empty or truncated file)")

        header_exact = not (fmt == "mp3" and not _has_xing(path))
        tolerance = max(0.1, 0.01 * (header or 0.0))
        if header_exact and header and span < header - tolerance:
            raise MediaError(f"truncated: header says {header:.2f}s, data covers {span:.2f}s")
        if fmt == "wav" and (missing := _wav_missing_bytes(path, size)):
            raise MediaError(f"truncated: {missing} bytes of audio data missing")
        if kind == "video" and declared_frames and packets < declared_frames:
            raise MediaError(f"truncated: {packets} of {declared_frames} video frames present")
        duration = header if (header_exact and header) else span

        info: dict[str, Any] = {}
        if audios:
            acc = audios[0].codec_context
            info["sample_rate"] = acc.sample_rate or None
            info["channels"] = acc.channels or None
        if videos:
            v = videos[0]
            info["width"], info["height"] = v.codec_context.width, v.codec_context.height
            rate = v.average_rate or v.guessed_rate
            info["frame_rate"] = float(rate) if rate else None
            info["frames"] = declared_frames or packets
    content_type = _content_type(fmt, kind, codecs, metadata)
    return MediaInfo(
        kind=kind,
        container=_SHORT_NAMES.get(content_type, fmt.split(",")[0]),
        content_type=content_type,
        size=size,
        duration=round(duration, 6) if duration else None,
        codecs=codecs,
        bitrate=int(size * 8 / duration) if duration else None,
        **info,
    )


def probe(path: Path) -> MediaInfo:
    """Inspect a file; raises MediaError for anything that is not complete, playable media."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(f"cannot read file: {exc}") from exc
    if size == 0:
        raise MediaError("empty file")
    with path.open("rb") as fh:
        head = fh.read(32)
    if _looks_like_image(head):
        return _probe_image(path, size)
    return _probe_av(path, size)
