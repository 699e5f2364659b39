"""200 synth/music 10 s clips end to end (API + queue + ingest) vs the engine's own render time.

    .venv/bin/python bench/pipeline.py [--clips 200] [--workers 2]

Baseline: the same 200 clips rendered by calling the synth engine directly, in as many threads as
the server has workers, in this process. Measured: wall time from the first POST until the last clip
is `completed`, over the direct wall time.
Target ≤ 1.3.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import Server  # noqa: E402

PROMPTS = [
    "upbeat electronic dance music with heavy bass",
    "ambient lo-fi hip hop beats",
    "cinematic orchestral",
    "acoustic folk with guitar",
    "dark techno 128 bpm",
]


def direct(clips: int, workers: int, workdir: Path) -> float:
    from mediagen.engines.base import Job
    from mediagen.engines.synth.engine import SynthEngine

    engine = SynthEngine()

    def one(i: int) -> None:
        d = workdir / f"d{i}"
        d.mkdir()
        engine.submit(
            Job(
                generation_id=i,
                kind="audio",
                model_id="synth/music",
                inputs={"prompt": PROMPTS[i % 5], "duration": 10, "seed": i + 1, "output_format": "mp3"},
                workdir=d,
            )
        )

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(clips)))
    return time.perf_counter() - t


def through_service(clips: int, workers: int, data: Path) -> float:
    with Server(data, MEDIAGEN_WORKERS=str(workers), MEDIAGEN_RECONCILE_INTERVAL_SECONDS="5") as srv:
        with httpx.Client(base_url=srv.url, headers={"X-API-Key": srv.admin_key or ""}, timeout=30) as c:
            t = time.perf_counter()
            ids = []
            for i in range(clips):
                r = c.post(
                    "/api/v2/generate/audio",
                    json={"prompt": PROMPTS[i % 5], "duration": 10, "seed": i + 1, "model": "synth/music"},
                )
                r.raise_for_status()
                ids.append(r.json()["audio_id"])
            while True:
                page = c.get("/api/audio", params={"status": "completed", "limit": 1}).json()
                failed = c.get("/api/audio", params={"status": "failed", "limit": 1}).json()["total"]
                if page["total"] + failed >= clips:
                    break
                time.sleep(0.25)  # polling is load on the server being measured; keep it light
            elapsed = time.perf_counter() - t
            assert failed == 0, f"{failed} clips failed"
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2, help="threads for both sides (this machine: 2 cores)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mediagen-pipeline-"))
    d = direct(args.clips, args.workers, tmp)
    (tmp / "data").mkdir()
    s = through_service(args.clips, args.workers, tmp / "data")
    print(f"clips: {args.clips} × 10 s synth/music, {args.workers} worker threads")
    print(f"direct engine render: {d:7.2f} s  ({args.clips * 10 / d:6.1f}× real time)")
    print(f"API + queue + ingest: {s:7.2f} s  ({args.clips * 10 / s:6.1f}× real time)")
    print(f"ratio service/direct: {s / d:.2f}  (target ≤ 1.3: {'met' if s / d <= 1.3 else 'MISSED'})")


if __name__ == "__main__":
    main()
