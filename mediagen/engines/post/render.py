"""A `Recipe` rendered to a file: an H.264 + AAC MP4 spot, or (no clips) an audio master.

The order of work: everything that can refuse the recipe (probing the clips, laying out the
edit, reading the music) runs before anything is encoded, so a bad recipe fails in a second with
the field at fault. Then the whole soundtrack is mixed and mastered in memory (mastering needs
all of it), and the frames are streamed through the encoder with the audio interleaved as they
go, so memory stays flat whatever the length. A failed or canceled render removes its file.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from mediagen.engines.audio_io import AAC_BITRATE, audio_frames, write_audio
from mediagen.engines.base import InputError
from mediagen.engines.post.mix import RATE, clip_track, mix, music_bed, read_audio
from mediagen.engines.post.recipe import Recipe
from mediagen.engines.post.timeline import (
    Frames,
    Plan,
    VideoInfo,
    check_frame,
    plan,
    probe_image,
    probe_video,
)
from mediagen.engines.video_io import TICKS, HeldMuxer, add_h264_stream
from mediagen.loudness import PRESETS, LoudnessPreset, Measurement, master, measure

Progress = Callable[[float], None]

# Between the neural engines' 18 and the synth's 23: the sources have been encoded once already,
# and a second generation at 23 turns their grain to smudge, while 18 costs time and bytes.
CRF = 20
AUDIO_LEAD = 0.5  # s: sound is muxed this far ahead of the picture; the muxer interleaves as it goes
PROGRESS_EVERY = 0.05  # s between progress reports
LOSSY_TRIES = 3  # masters encoded and measured before settling for the last
LOSSY_AIM_LU = 0.2  # how near the target a lossy delivery must land (presets allow ±0.5)
LOSSY_MARGIN_DB = 0.05  # extra room under the ceiling once an encode has overshot it


def plan_length(recipe: Recipe, lengths: list[float | None]) -> float:
    """The output's length (s) for clips of these source lengths (None for images), or the
    InputError the renderer would raise: for refusing a recipe before it is queued."""
    return plan(recipe, lengths).duration


def render_video(recipe: Recipe, out: Path, progress: Progress) -> dict[str, Any]:
    """Render `recipe` (at least one clip) to an MP4 at `out`; returns what was made: frame size,
    rate, length, frame count, whether it has sound, its loudness once mastered, and the spans."""
    width, height = check_frame(recipe)
    preset = _preset(recipe)
    infos: list[VideoInfo | None] = []
    for i, clip in enumerate(recipe.clips):
        if clip.kind == "video":
            infos.append(probe_video(clip.path, f"clips[{i}].video_id"))
        elif clip.kind == "image":
            probe_image(clip.path, f"clips[{i}].image_id")
            infos.append(None)
        else:
            raise InputError(f"a clip is a video or an image, not {clip.kind!r}", field=f"clips[{i}]")
    timeline = plan(recipe, [info.length if info else None for info in infos])
    samples = round(timeline.frames * RATE / timeline.fps)
    audio = _soundtrack(recipe, timeline, infos, samples)
    loudness = None
    track = None  # the AAC track, encoded once: measured as delivered, then muxed as it is
    if audio is not None and preset is not None:
        encoded: list[io.BytesIO] = []

        def deliver(samples: np.ndarray) -> np.ndarray:
            encoded[:] = [_encode_aac(samples)]
            return _decoded(encoded[0])

        _, measured = _master_through(audio, preset, deliver)
        track, loudness = encoded[0], measured.as_json()
    elif audio is not None:
        track = _encode_aac(audio)
    del audio  # the samples are in the track now; a long programme's floats need not wait
    try:
        with Frames(recipe, timeline, infos) as frames:
            _write_mp4(out, frames, timeline, width, height, track, progress)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return {
        "width": width,
        "height": height,
        "fps": timeline.fps,
        "duration": timeline.duration,
        "frames": timeline.frames,
        "audio": track is not None,
        "loudness": loudness,
        "timeline": [span.as_json() for span in timeline.spans],
    }


def render_audio(recipe: Recipe, out: Path, fmt: str, progress: Progress) -> dict[str, Any]:
    """Master the recipe's music alone (no clips) to `length` s as mp3 or wav, 48 kHz stereo."""
    if recipe.clips:
        raise InputError("an audio master takes music only, no clips", field="clips")
    if recipe.music is None:
        raise InputError("an audio master needs music", field="music")
    if recipe.length is None or recipe.length <= 0:
        raise InputError("an audio master needs a length above 0 s", field="length")
    if fmt not in ("mp3", "wav"):
        raise InputError(f"output format is 'mp3' or 'wav', not {fmt!r}", field="output_format")
    preset = _preset(recipe)
    progress(0.0)
    samples = round(recipe.length * RATE)
    bed = music_bed(recipe.music, samples, must_fill=True)
    progress(0.3)
    loudness = None
    try:
        if preset is not None and fmt == "mp3":

            def deliver(samples: np.ndarray) -> np.ndarray:
                write_audio(samples, out, fmt, rate=RATE)
                return _decoded(out)

            _, measured = _master_through(bed, preset, deliver)  # the last try is the file
            loudness = measured.as_json()
        else:
            if preset is not None:
                bed, measured = master(bed, RATE, preset)
                loudness = measured.as_json()
            progress(0.6)
            write_audio(bed, out, fmt, rate=RATE)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    progress(1.0)
    return {"duration": samples / RATE, "samples": samples, "rate": RATE, "channels": 2, "loudness": loudness}


def _preset(recipe: Recipe) -> LoudnessPreset | None:
    if recipe.music is not None and recipe.music.mode not in ("replace", "duck"):
        raise InputError(f"mode is 'replace' or 'duck', not {recipe.music.mode!r}", field="music.mode")
    if recipe.loudness is None:
        return None
    preset = PRESETS.get(recipe.loudness)
    if preset is None:
        raise InputError(
            f"unknown loudness preset {recipe.loudness!r}; one of {', '.join(PRESETS)}", field="loudness"
        )
    return preset


def _master_through(
    samples: np.ndarray, preset: LoudnessPreset, deliver: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, Measurement]:
    """Master so that what a lossy codec delivers meets the preset, and measure that delivery.

    AAC and MP3 low-pass the top octave (a few tenths of a LU lost on bright material) and
    overshoot true peaks by up to a dB on dense transients, so a master that meets the preset
    going in can miss it coming out. Each try is encoded and decoded by `deliver` and measured;
    the next aims off by what the last lost and went over. The encoders are deterministic, so
    the try that passes is what the file will hold.
    """
    offset, headroom = 0.0, 0.0
    for _ in range(LOSSY_TRIES):
        mastered, _ = master(samples, RATE, preset, offset_lu=offset, headroom_db=headroom)
        got = measure(deliver(mastered), RATE)
        if got.integrated_lufs is None or got.true_peak_dbtp is None:
            break
        lost = preset.target_lufs - got.integrated_lufs
        over = got.true_peak_dbtp - preset.ceiling_dbtp
        if abs(lost) <= LOSSY_AIM_LU and over <= 0:
            break
        offset += lost
        if over > 0:
            headroom += over + LOSSY_MARGIN_DB
    return mastered, got


def _encode_aac(samples: np.ndarray) -> io.BytesIO:
    """The soundtrack as an AAC track in an in-memory MP4 (30 s is about 600 kB): decoded to be
    measured, then its packets are copied into the spot, so the audio is encoded only once."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=RATE, layout="stereo")
        stream.bit_rate = AAC_BITRATE
        for frame in audio_frames(samples, chunk=4096, rate=RATE):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer


def _decoded(source: Path | io.BytesIO) -> np.ndarray:
    if isinstance(source, io.BytesIO):
        source.seek(0)
    with av.open(source if isinstance(source, io.BytesIO) else str(source), "r") as container:
        stream = container.streams.audio[0]
        to_float = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
        chunks = [out.to_ndarray() for f in container.decode(stream) for out in to_float.resample(f)]
    return np.concatenate(chunks, axis=1)


def _soundtrack(
    recipe: Recipe, timeline: Plan, infos: list[VideoInfo | None], samples: int
) -> np.ndarray | None:
    """The mixed programme, or None when nothing in the recipe makes a sound."""
    voice = None
    music = recipe.music
    if music is None or music.mode == "duck":  # `replace` never decodes the clips' sound
        sounds: dict[int, np.ndarray] = {}
        for span in timeline.spans:
            info = infos[span.index]
            if info is None or not info.has_audio:
                continue
            length = round((span.end - span.start) * RATE)
            path = recipe.clips[span.index].path
            got = read_audio(path, skip=span.source_in, limit=length, origin=info.origin)
            if got is not None and got[0].shape[1]:
                sound = got[0]
                if sound.shape[1] < length:  # the sound stops before the picture: silence after it
                    sound = np.pad(sound, ((0, 0), (0, length - sound.shape[1])))
                sounds[span.index] = sound
        voice = clip_track(timeline.spans, sounds, samples) if sounds else None
    bed = music_bed(music, samples, must_fill=False) if music is not None else None
    return mix(voice, bed, music.mode if music is not None else "replace")


class _Sound:
    """An encoded track's packets, muxed into the spot a little ahead of the picture (the muxer
    interleaves them as they come, so neither is buffered whole)."""

    def __init__(self, track: io.BytesIO | None, container: Any) -> None:
        self.container = container
        self.source = None
        self.packets: Iterator[av.Packet] = iter(())
        if track is not None:
            track.seek(0)
            self.source = av.open(track, "r")
            stream = self.source.streams.audio[0]
            self.stream = container.add_stream_from_template(stream)
            self.packets = (p for p in self.source.demux(stream) if p.pts is not None)
        self.upcoming = next(self.packets, None)

    def feed(self, until: float) -> None:
        """Mux every packet that starts before `until` s."""
        while self.upcoming is not None and float((self.upcoming.pts or 0) * self.upcoming.time_base) < until:
            self.upcoming.stream = self.stream
            self.container.mux(self.upcoming)
            self.upcoming = next(self.packets, None)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


def _write_mp4(
    path: Path,
    frames: Iterable[av.VideoFrame],
    timeline: Plan,
    width: int,
    height: int,
    track: io.BytesIO | None,
    progress: Progress,
) -> None:
    fps, count = timeline.fps, timeline.frames
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        container.metadata.clear()
        video = add_h264_stream(container, width=width, height=height, fps=fps, crf=CRF)
        # All cores: a spot is a person's wait, and x264's frame threads also run beside our own
        # decoding and compositing. (The shared single-thread setting buys identical bytes on any
        # machine, which a composed asset does not need.)
        video.options = {**video.options, "x264-params": "bframes=0:threads=auto"}
        video.codec_context.thread_count = 0
        cc = video.codec_context
        sound = _Sound(track, container)
        try:
            held = HeldMuxer(container)  # the file lasts exactly frames / fps
            reported = 0.0
            progress(0.0)
            written = 0
            for k, frame in enumerate(frames):
                frame.pts = k * TICKS
                frame.time_base = cc.time_base
                frame.pict_type = (
                    av.video.frame.PictureType.NONE
                )  # a decoder's frame type is no order to x264
                held.mux(video.encode(frame))
                written = k + 1
                sound.feed(written / fps + AUDIO_LEAD)
                now = time.monotonic()
                if now - reported >= PROGRESS_EVERY:
                    reported = now
                    progress(written / count)
            if written != count:
                raise RuntimeError(f"the timeline made {written} frames of {count}")
            held.mux(video.encode(None))
            held.close(count * TICKS)
            sound.feed(float("inf"))
        finally:
            sound.close()
    progress(1.0)
