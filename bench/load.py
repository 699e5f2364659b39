"""A bounded load test: readers on the gallery, item and data routes while generators post synth jobs.

    .venv/bin/python bench/load.py [--seconds 60] [--readers 4] [--generators 2] [--inflight 3]
                                   [--workers 2] [--storage db|fs]

One live `mediagen serve` on SQLite (rate limit off: MEDIAGEN_GENERATE_RATE_LIMIT_PER_MINUTE=0, as
the bench server helper sets it). A few assets are made first so readers have items to fetch. Then
three phases, the same readers in each:

1. floor: the readers on `/health` (one `SELECT 1`, no key), the server otherwise idle;
2. idle reads: the readers on gallery / item / data routes, nothing generating;
3. load: the same reads for `--seconds` while `--generators` threads keep `--inflight` short synth
   jobs each in flight (audio 1 s, image 256², video 1 s), polling them to completion.

Printed per route class: requests/s, p50, p99, errors; the load phase beside idle reads (ratio of
p50s), and idle reads beside the floor. After the run the queue is left to drain, and every posted
generation must have completed. The server log is searched for "database is locked".
Client and server share this machine's cores, so the figures are what one box does.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import Server, pct  # noqa: E402

PATHS = {"audio": "audio", "image": "images", "video": "videos"}
ID_FIELD = {"audio": "audio_id", "image": "image_id", "video": "video_id"}
GENERATE_MIX = ["audio", "audio", "audio", "image", "image", "video"]
READ_MIX = ["gallery"] * 4 + ["item"] * 4 + ["data"] * 2
TERMINAL = {"completed", "failed", "canceled"}


def request_body(kind: str, seed: int) -> dict[str, Any]:
    if kind == "image":
        return {"prompt": f"load test poster {seed}", "seed": seed, "width": 256, "height": 256}
    return {"prompt": f"load test {kind} {seed}", "seed": seed, "duration": 1}


@dataclass
class Stats:
    """Latencies (ms) and errors per route class, kept per thread and merged after."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, str] = field(default_factory=dict)

    def timed(
        self, cls: str, client: httpx.Client, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            r = client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.errors[cls] += 1
            self.samples.setdefault(cls, repr(exc))
            return None
        self.ms[cls].append((time.perf_counter() - t) * 1000)
        if r.status_code >= 400:
            self.errors[cls] += 1
            self.samples.setdefault(cls, f"{r.status_code} {r.text[:200]}")
        return r

    def merge(self, other: Stats) -> None:
        for cls, values in other.ms.items():
            self.ms[cls] += values
        for cls, n in other.errors.items():
            self.errors[cls] += n
        for cls, sample in other.samples.items():
            self.samples.setdefault(cls, sample)


def post(stats: Stats, c: httpx.Client, kind: str, seed: int) -> int | None:
    r = stats.timed("generate", c, "POST", f"/api/v2/generate/{kind}", json=request_body(kind, seed))
    if r is None or r.status_code != 202:
        return None
    body = r.json()
    return int(body.get(ID_FIELD[kind]) or body["id"])


def seed_assets(url: str, key: str, count: int) -> list[tuple[str, int]]:
    """Make `count` assets to read, and wait until they are all completed."""
    stats = Stats()
    made: list[tuple[str, int]] = []
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as c:
        for i in range(count):
            kind = GENERATE_MIX[i % len(GENERATE_MIX)]
            gen_id = post(stats, c, kind, 10_000 + i)
            assert gen_id is not None, stats.samples
            made.append((kind, gen_id))
        deadline = time.monotonic() + 300
        for kind, gen_id in made:
            while (status := c.get(f"/api/{PATHS[kind]}/{gen_id}").json()["status"]) not in TERMINAL:
                assert time.monotonic() < deadline, "seed assets did not finish"
                time.sleep(0.2)
            assert status == "completed", f"seed {kind} {gen_id} {status}"
    return made


def reader(
    url: str, key: str, assets: list[tuple[str, int]], mode: str, stop: threading.Event, out: Stats
) -> None:
    rng = random.Random(threading.get_ident())
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as c:
        while not stop.is_set():
            if mode == "health":
                out.timed("health", c, "GET", "/health")
                continue
            cls = rng.choice(READ_MIX)
            kind, gen_id = rng.choice(assets)
            if cls == "gallery":
                params: dict[str, Any] = {"limit": 24, "offset": rng.choice([0, 0, 0, 24])}
                if rng.random() < 0.5:
                    params["status"] = "completed"
                out.timed(cls, c, "GET", f"/api/{PATHS[kind]}", params=params)
            elif cls == "item":
                out.timed(cls, c, "GET", f"/api/{PATHS[kind]}/{gen_id}")
            else:
                out.timed(cls, c, "GET", f"/api/{PATHS[kind]}/{gen_id}/data")


@dataclass
class GeneratorLog:
    posted: list[tuple[str, int]] = field(default_factory=list)
    seconds_to_done: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def generator(
    url: str, key: str, inflight: int, index: int, stop: threading.Event, out: Stats, log: GeneratorLog
) -> None:
    """Keeps `inflight` jobs outstanding; polls the oldest until it finishes, then posts another."""
    outstanding: list[tuple[str, int, float]] = []
    seed = index * 1_000_000
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as c:
        while not stop.is_set():
            if len(outstanding) < inflight:
                seed += 1
                kind = GENERATE_MIX[seed % len(GENERATE_MIX)]
                gen_id = post(out, c, kind, seed)
                if gen_id is not None:
                    outstanding.append((kind, gen_id, time.perf_counter()))
                    log.posted.append((kind, gen_id))
                continue
            kind, gen_id, started = outstanding[0]
            r = out.timed("poll", c, "GET", f"/api/{PATHS[kind]}/{gen_id}")
            status = r.json().get("status") if r is not None and r.status_code == 200 else None
            if status in TERMINAL:
                outstanding.pop(0)
                log.outcomes[str(status)] += 1
                log.seconds_to_done.append(time.perf_counter() - started)
            else:
                time.sleep(0.1)


def run_phase(
    url: str,
    key: str,
    assets: list[tuple[str, int]],
    seconds: float,
    *,
    readers: int,
    mode: str,
    generators: int = 0,
    inflight: int = 0,
) -> tuple[Stats, GeneratorLog, float]:
    stop = threading.Event()
    stats = [Stats() for _ in range(readers + generators)]
    log = GeneratorLog()
    threads = [
        threading.Thread(target=reader, args=(url, key, assets, mode, stop, stats[i]), daemon=True)
        for i in range(readers)
    ] + [
        threading.Thread(
            target=generator, args=(url, key, inflight, i, stop, stats[readers + i], log), daemon=True
        )
        for i in range(generators)
    ]
    t = time.perf_counter()
    for th in threads:
        th.start()
    time.sleep(seconds)
    stop.set()
    for th in threads:
        th.join(60)
    elapsed = time.perf_counter() - t
    merged = Stats()
    for s in stats:
        merged.merge(s)
    return merged, log, elapsed


def drain(url: str, key: str, timeout: float = 300) -> tuple[float, int]:
    """Wait until no generation is pending or processing; (seconds waited, still active)."""
    t = time.perf_counter()
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as c:
        while True:
            active = sum(
                c.get(f"/api/{path}", params={"status": status, "limit": 1}).json()["total"]
                for path in PATHS.values()
                for status in ("pending", "processing")
            )
            if active == 0 or time.perf_counter() - t > timeout:
                return time.perf_counter() - t, active
            time.sleep(0.5)


def final_statuses(url: str, key: str, posted: list[tuple[str, int]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as c:
        for kind, gen_id in posted:
            counts[c.get(f"/api/{PATHS[kind]}/{gen_id}").json()["status"]] += 1
    return counts


def row(name: str, stats: Stats | None, seconds: float) -> str:
    if stats is None or not stats.ms.get(name):
        return f"{'-':>7} {'-':>8} {'-':>8} {'-':>4}"
    ms = stats.ms[name]
    return f"{len(ms) / seconds:7.1f} {pct(ms, 50):8.2f} {pct(ms, 99):8.2f} {stats.errors.get(name, 0):4d}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60, help="length of the load phase (10 for a quick run)")
    ap.add_argument(
        "--baseline-seconds", type=float, default=None, help="floor and idle phases (default ≤ 10)"
    )
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--generators", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=3, help="jobs each generator keeps outstanding")
    ap.add_argument("--workers", type=int, default=2, help="server job threads (this machine: 2 cores)")
    ap.add_argument("--seed-assets", type=int, default=24)
    ap.add_argument("--storage", choices=["db", "fs"], default="db")
    args = ap.parse_args()
    base = args.baseline_seconds or min(10.0, max(5.0, args.seconds / 2))
    data = Path(tempfile.mkdtemp(prefix="mediagen-load-")) / "data"
    data.mkdir()
    env = {
        "MEDIAGEN_WORKERS": str(args.workers),
        "MEDIAGEN_STORAGE_BACKEND": args.storage,
        "MEDIAGEN_GENERATE_RATE_LIMIT_PER_MINUTE": "0",  # the default 10/min per key would refuse the load
    }
    with Server(data, **env) as srv:
        key = srv.admin_key or ""
        assets = seed_assets(srv.url, key, args.seed_assets)
        floor, _, floor_s = run_phase(srv.url, key, assets, base, readers=args.readers, mode="health")
        idle, _, idle_s = run_phase(srv.url, key, assets, base, readers=args.readers, mode="reads")
        load, log, load_s = run_phase(
            srv.url,
            key,
            assets,
            args.seconds,
            readers=args.readers,
            mode="reads",
            generators=args.generators,
            inflight=args.inflight,
        )
        drained_s, still_active = drain(srv.url, key)
        statuses = final_statuses(srv.url, key, log.posted)
        locked = sum("database is locked" in line.lower() for line in srv.lines)
        tracebacks = sum(line.startswith("Traceback") for line in srv.lines)

    print(
        f"load: {args.readers} readers + {args.generators} generators ({args.inflight} jobs in flight each) "
        f"against mediagen serve on SQLite ({args.storage} blobs, {args.workers} job threads), "
        f"rate limit off (MEDIAGEN_GENERATE_RATE_LIMIT_PER_MINUTE=0); {os.cpu_count()} cores shared by "
        f"client and server; {len(assets)} seed assets"
    )
    print(
        f"\n{'route class':14} | {'idle, no generation (' + f'{idle_s:.0f} s)':32} | "
        f"{'under generation load (' + f'{load_s:.0f} s)':32} | p50 ratio"
    )
    columns = f"{'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'err':>4}"
    print(f"{'':14} | {columns} | {columns} |")
    print(f"{'health (floor)':14} | {row('health', floor, floor_s)} | {row('health', None, 1)} |")
    all_idle, all_load = Stats(), Stats()
    for cls in ("gallery", "item", "data"):
        ratio = (
            pct(load.ms[cls], 50) / pct(idle.ms[cls], 50) if idle.ms[cls] and load.ms[cls] else float("nan")
        )
        print(f"{cls:14} | {row(cls, idle, idle_s)} | {row(cls, load, load_s)} | {ratio:5.2f}x")
        all_idle.ms["reads"] += idle.ms[cls]
        all_idle.errors["reads"] += idle.errors.get(cls, 0)
        all_load.ms["reads"] += load.ms[cls]
        all_load.errors["reads"] += load.errors.get(cls, 0)
    reads_ratio = pct(all_load.ms["reads"], 50) / pct(all_idle.ms["reads"], 50)
    both = f"{row('reads', all_idle, idle_s)} | {row('reads', all_load, load_s)}"
    print(f"{'all reads':14} | {both} | {reads_ratio:5.2f}x")
    print(f"{'generate POST':14} | {row('generate', None, 1)} | {row('generate', load, load_s)} |")
    print(f"{'poll (item)':14} | {row('poll', None, 1)} | {row('poll', load, load_s)} |")

    floor_p50 = pct(floor.ms["health"], 50)
    load_rps, idle_rps = len(all_load.ms["reads"]) / load_s, len(all_idle.ms["reads"]) / idle_s
    print(
        f"\nreads vs the /health floor: idle p50 {pct(all_idle.ms['reads'], 50) / floor_p50:.2f}x, "
        f"under load p50 {pct(all_load.ms['reads'], 50) / floor_p50:.2f}x; "
        f"throughput under load {load_rps:.1f} reads/s vs {idle_rps:.1f} idle ({load_rps / idle_rps:.2f}x)"
    )
    done = log.seconds_to_done
    posted = len(log.posted)
    print(
        f"generations: {posted} posted ({posted / load_s:.1f}/s), finished during the run {len(done)} "
        f"(post to terminal p50 {pct(done, 50):.2f} s, p99 {pct(done, 99):.2f} s); "
        f"queue drained {drained_s:.1f} s after the run ({still_active} still active)"
    )
    every = statuses.get("completed", 0) == posted and still_active == 0
    print(
        "after the run: "
        + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        + f" -> every generation completed: {'yes' if every else 'NO'}"
    )
    errors = sum(load.errors.values()) + sum(idle.errors.values()) + sum(floor.errors.values())
    print(
        f"errors: {errors} (HTTP ≥ 400 or transport); "
        f"server log: {locked} 'database is locked', {tracebacks} tracebacks"
    )
    for cls, sample in sorted({**floor.samples, **idle.samples, **load.samples}.items()):
        print(f"  first {cls} error: {sample}")


if __name__ == "__main__":
    main()
