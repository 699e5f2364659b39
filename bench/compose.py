"""A 30 s 1080×1920 spot from three stored clips and a music bed (`social` loudness), through the
API, against the same edit made by one plain `ffmpeg` command line, in the same run.

    .venv/bin/python bench/compose.py [--seconds 30]

Sources (made here): three 1280×720 25 fps clips with sound, 12 s each, and a 40 s music bed.
Edit: 10 s of each clip, cut, cropped to fill 9:16 at 30 fps; the music replaces the clips' sound,
fades in 0.5 s and out 1.5 s, mastered to −14 LUFS / −1 dBTP; H.264 + AAC, faststart.
Measured: wall time from the POST until the asset is `completed` (render, probe, loudness, store)
over ffmpeg's wall time (goal ≤ 1.3×), and how much the server's peak RSS grew (goal ≤ 200 MB).
ffmpeg's loudness is its one-pass `loudnorm`; ours measures, masters and measures again.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import Server  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_clip(path: Path, seconds: float, hue: int) -> None:
    fps, width, height = 25, 1280, 720
    with av.open(str(path), "w", format="mp4") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=48_000, layout="stereo")
        x = np.arange(width)[None, :]
        y = np.arange(height)[:, None]
        for i in range(int(seconds * fps)):
            frame = np.empty((height, width, 3), np.uint8)
            frame[..., 0] = (x + i * 4 + hue) % 256
            frame[..., 1] = (y + hue) % 256
            frame[..., 2] = (x // 2 + y // 2 + i) % 256
            out.mux(v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(v.encode(None))
        t = np.arange(int(seconds * 48_000)) / 48_000
        tone = (0.1 * np.sin(2 * np.pi * (300 + hue) * t)).astype(np.float32)
        for s in range(0, len(tone), 4800):
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(np.stack([tone[s : s + 4800]] * 2)), format="fltp", layout="stereo"
            )  # noqa: E501
            af.sample_rate, af.pts, af.time_base = 48_000, s, Fraction(1, 48_000)
            out.mux(a.encode(af))
        out.mux(a.encode(None))


def make_music(path: Path, seconds: float) -> None:
    rate = 44_100
    t = np.arange(int(seconds * rate)) / rate
    bed = 0.08 * (np.sin(2 * np.pi * 110 * t) + np.sin(2 * np.pi * 165 * t) + np.sin(2 * np.pi * 220 * t))
    kick = np.where((t % 0.5) < 0.08, np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 40), 0.0)
    with av.open(str(path), "w", format="wav") as out:
        s = out.add_stream("pcm_s16le", rate=rate, layout="stereo")
        pcm = np.ascontiguousarray(np.stack([bed + 0.6 * kick] * 2).astype(np.float32))
        for i in range(0, pcm.shape[1], 44_100):
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, i : i + 44_100]), format="fltp", layout="stereo"
            )  # noqa: E501
            af.sample_rate, af.pts, af.time_base = rate, i, Fraction(1, rate)
            out.mux(s.encode(af))
        out.mux(s.encode(None))


def ffmpeg_edit(clips: list[Path], music: Path, out: Path, seconds: float) -> float:
    part = seconds / len(clips)
    video = "".join(
        f"[{i}:v]trim=0:{part},setpts=PTS-STARTPTS,fps=30,scale=1080:1920:force_original_aspect_ratio=increase,"
        f"crop=1080:1920,setsar=1[v{i}];"
        for i in range(len(clips))
    )
    graph = (
        video
        + "".join(f"[v{i}]" for i in range(len(clips)))
        + f"concat=n={len(clips)}:v=1:a=0[v];"
        + f"[{len(clips)}:a]atrim=0:{seconds},asetpts=PTS-STARTPTS,aresample=48000,"
        + f"afade=t=in:d=0.5,afade=t=out:st={seconds - 1.5}:d=1.5,loudnorm=I=-14:TP=-1,aresample=48000[a]"
    )
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for c in clips:
        cmd += ["-i", str(c)]
    cmd += ["-i", str(music), "-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-x264-params", "bframes=0:threads=1"]
    cmd += ["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", str(out)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is needed for the baseline: apt-get install ffmpeg")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = [root / f"clip{i}.mp4" for i in range(3)]
        for i, c in enumerate(clips):
            make_clip(c, args.seconds / 3 + 2, hue=i * 60)
        music = root / "music.wav"
        make_music(music, args.seconds + 10)
        baseline = ffmpeg_edit(clips, music, root / "ffmpeg.mp4", args.seconds)

        with (
            Server(root / "data") as server,
            httpx.Client(
                base_url=server.url, headers={"X-API-Key": server.admin_key or ""}, timeout=120
            ) as api,
        ):
            ids = []
            for c in clips:
                res = api.post("/api/videos/upload", params={"title": c.stem}, content=c.read_bytes())
                ids.append(res.json()["id"])
            res = api.post("/api/audio/upload", params={"title": "music"}, content=music.read_bytes())
            music_id = res.json()["id"]
            before = peak_rss_mb(server.pid)
            part = args.seconds / 3
            body = {
                "clips": [{"video_id": i, "in": 0, "out": part} for i in ids],
                "music": {"audio_id": music_id, "fade_in": 0.5, "fade_out": 1.5, "mode": "replace"},
                "aspect": "9:16", "fit": "crop", "length": args.seconds, "loudness": "social",
            }  # fmt: skip
            started = time.perf_counter()
            spot = api.post("/api/v2/compose", json=body).json()["video_id"]
            while (item := api.get(f"/api/videos/{spot}").json())["status"] in ("pending", "processing"):
                time.sleep(0.05)
            ours = time.perf_counter() - started
            grew = peak_rss_mb(server.pid) - before
        if item["status"] != "completed":
            sys.exit(f"the spot failed: {item['error']}")
        loud = item["loudness"]
        print(f"spot: {item['width']}×{item['height']}, {item['duration']:.2f} s, "
              f"{loud['integrated_lufs']} LUFS, {loud['true_peak_dbtp']} dBTP")  # fmt: skip
        print(f"ffmpeg (one command line)  {baseline:7.2f} s")
        print(f"Mediagen (API → completed) {ours:7.2f} s   ratio {ours / baseline:.2f}x  (goal <= 1.3x)")
        print(f"server peak RSS grew {grew:.0f} MB during the render (goal <= 200 MB)")


if __name__ == "__main__":
    main()
