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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mediagen.engines.synth.audio_io import write_audio  # noqa: E402
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


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one run per case, fewer cases")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    print(f"mediagen synth bench · {pin_one_core()} · {platform.processor() or platform.machine()}")
    synthesize(make_plan("warm up", 1), 2.0)  # wavetables and voice calibration are built once

    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    rows: list[tuple[str, float, float, float, str]] = []
    durations = (10.0,) if args.quick else (10.0, 60.0)
    prompts = PROMPTS[:2] if args.quick else PROMPTS
    for duration in durations:
        for prompt in prompts:
            plan = make_plan(prompt, 0)
            timings: dict[str, float] = {}

            def synth_once(plan=plan, duration=duration) -> float:  # noqa: B023
                start = time.perf_counter()
                rendition = synthesize(plan, duration)
                timings["samples"] = rendition.samples  # type: ignore[assignment]
                return time.perf_counter() - start

            synth_s = best_of(runs, synth_once)
            for fmt in ("wav", "mp3"):

                def encode_once(fmt=fmt) -> float:
                    start = time.perf_counter()
                    write_audio(timings["samples"], tmp / f"bench.{fmt}", fmt)  # type: ignore[arg-type]
                    return time.perf_counter() - start

                encode_s = best_of(runs, encode_once)
                total = synth_s + encode_s
                ratio = duration / total
                verdict = "ok" if ratio >= MUSIC_TARGET else "BELOW"
                rows.append(
                    (f"music {duration:>4.0f}s {fmt} {plan.genre:<9}", synth_s, encode_s, ratio, verdict)
                )

    video_cases = [(854, 480)] if args.quick else [(854, 480), (1280, 720)]
    for width, height in video_cases:
        for soundtrack in (False, True):

            def video_once(width=width, height=height, soundtrack=soundtrack) -> float:
                start = time.perf_counter()
                render_video(
                    "sunset over the ocean, synthwave",
                    duration=5.0,
                    fps=24,
                    width=width,
                    height=height,
                    seed=1,
                    soundtrack=soundtrack,
                    out=tmp / "bench.mp4",
                )
                return time.perf_counter() - start

            total = best_of(1 if not args.quick else 1, video_once)
            verdict = "ok" if (height > 480 or total <= VIDEO_TARGET_S) else "BELOW"
            label = f"video 5s {height}p24{' +music' if soundtrack else ''}"
            rows.append((label, total, 0.0, 5.0 / total, verdict))

    print(f"{'case':<30} {'render s':>9} {'encode s':>9} {'× real time':>12}  target")
    for label, render_s, encode_s, ratio, verdict in rows:
        target = f"≥{MUSIC_TARGET:.0f}× {verdict}" if label.startswith("music") else verdict
        enc = f"{encode_s:9.3f}" if encode_s else f"{'(incl.)':>9}"
        print(f"{label:<30} {render_s:9.3f} {enc} {ratio:11.1f}×  {target}")


if __name__ == "__main__":
    main()
