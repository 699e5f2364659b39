"""Benchmark the offline synth on one core: render time and "× real time" against the targets.

Run: .venv/bin/python bench/synth.py [--quick]

Music target: ≥ 50× real time including the encode. The table separates synthesis from encoding
because on slow cores LAME alone can take most of the budget; WAV rows show the synth on its own.
Video target: a 5 s 480p clip in a few seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mediagen.engines.audio_io import write_audio  # noqa: E402
from mediagen.engines.synth.music import synthesize  # noqa: E402
from mediagen.engines.synth.prompt import make_plan  # noqa: E402
from mediagen.engines.synth.video import render_video  # noqa: E402

MUSIC_TARGET = 50.0
VIDEO_TARGET_S = 5.0  # "a few seconds" for 5 s of 480p

PROMPTS = (
    "upbeat electronic dance music with heavy bass",
    "ambient lo-fi hip hop beats",
    "cinematic orchestral",
    "dark techno 128 bpm",
)


def pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity on this platform)"


def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Best wall time of `runs` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_music(duration: float, prompt: str, runs: int, tmp: Path) -> list[tuple[str, float, float, float]]:
    plan = make_plan(prompt, 0)
    synth_s, rendition = timed(partial(synthesize, plan, duration), runs)
    rows = []
    for fmt in ("wav", "mp3"):
        samples = rendition.samples  # type: ignore[attr-defined]
        encode_s, _ = timed(partial(write_audio, samples, tmp / f"bench.{fmt}", fmt), runs)
        rows.append(
            (
                f"music {duration:>4.0f}s {fmt} {plan.genre:<9}",
                synth_s,
                encode_s,
                duration / (synth_s + encode_s),
            )
        )
    return rows


def bench_video(width: int, height: int, soundtrack: bool, tmp: Path) -> tuple[str, float, float, float]:
    render = partial(
        render_video,
        "sunset over the ocean, synthwave",
        duration=5.0,
        fps=24,
        width=width,
        height=height,
        seed=1,
        soundtrack=soundtrack,
        out=tmp / "bench.mp4",
    )
    total, _ = timed(render, 1)
    return f"video 5s {height}p24{' +music' if soundtrack else ''}", total, 0.0, 5.0 / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one run per case, fewer cases")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    print(f"mediagen synth bench · {pin_one_core()} · {platform.machine()} · {os.cpu_count()} cpus visible")
    # Wavetables and voice calibration are built once per worker process; keep them out of the figures.
    for prompt in PROMPTS:
        synthesize(make_plan(prompt, 0), 2.0)
    print(f"load average before the run: {os.getloadavg()[0]:.2f} (other work on the machine skews timings)")

    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    rows: list[tuple[str, float, float, float]] = []
    for duration in (10.0,) if args.quick else (10.0, 60.0):
        for prompt in PROMPTS[:2] if args.quick else PROMPTS:
            rows += bench_music(duration, prompt, runs, tmp)
    for width, height in [(854, 480)] if args.quick else [(854, 480), (1280, 720)]:
        for soundtrack in (False, True):
            rows.append(bench_video(width, height, soundtrack, tmp))

    print(f"{'case':<30} {'render s':>9} {'encode s':>9} {'× real time':>12}  target")
    for label, render_s, encode_s, ratio in rows:
        if label.startswith("music"):
            target = f"≥{MUSIC_TARGET:.0f}× {'ok' if ratio >= MUSIC_TARGET else 'BELOW'}"
            enc = f"{encode_s:9.3f}"
        else:
            ok = "480p" not in label or render_s <= VIDEO_TARGET_S
            target = (
                f"480p ≤{VIDEO_TARGET_S:.0f} s {'ok' if ok else 'BELOW'}" if "480p" in label else "(info)"
            )
            enc = f"{'(incl.)':>9}"
        print(f"{label:<30} {render_s:9.3f} {enc} {ratio:11.1f}×  {target}")


if __name__ == "__main__":
    main()
