"""Webhook burst: N hosted predictions finish at once; how long until every asset is stored?

    .venv/bin/python bench/webhooks.py [--n 500] [--size-mb 2] [--workers 8] [--env NAME=VALUE]

A live `mediagen serve` (SQLite, blobs in the database, MEDIAGEN_WORKERS in-process workers) talks
to the fake Replicate (tests/fakes/replicate_server.py) on loopback. N generations are created
through the API while their predictions are held in "starting"; then all of them are released in
one tick, so N signed `start` + `completed` webhooks arrive together and N output files (each a
distinct, valid WAV of --size-mb, so probe, waveform peaks and the content-addressed store all do
real work) are fetched from the fake's delivery route.

Measured:
- server: from the release until `GET /api/audio?status=completed` counts N;
- baseline: a plain parallel download of the same N files with httpx into temp files, with the same
  concurrency as the server's workers (what the ingest could do at best with no checks, no probe,
  no derivations, no database);
- ratio server / baseline (goal ≤ 3, issue 14), and the server's RSS before the burst, at its
  peak and after (target flat: growth ≤ 100 MB);
- the server's CPU time over the burst, per asset: unlike the wall-clock figures it hardly moves
  when other work shares the machine, so it is the figure to compare between runs there.

The fake sends webhooks from one thread by default; real Replicate delivers in parallel, so the
bench adds sender threads (each pops the fake's shared outbox) to keep the fake from being the
bottleneck being measured.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Server, pct, rss_mb  # noqa: E402
from tests.fakes.replicate_server import FakePrediction, FakeReplicate, Script  # noqa: E402

RATE = 48_000
CHANNELS = 2


def make_wav(size_bytes: int) -> bytes:
    """A stereo 16-bit WAV of about `size_bytes` (a chord, so the waveform has something to draw)."""
    frames = max(1, (size_bytes - 44) // (2 * CHANNELS))
    t = np.arange(frames) / RATE
    tone = (
        0.3 * np.sin(2 * np.pi * 220 * t)
        + 0.2 * np.sin(2 * np.pi * 277.2 * t)
        + 0.1 * np.sin(2 * np.pi * 329.6 * t)
    )
    pcm = (np.stack([tone, tone * 0.8], axis=1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(CHANNELS)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, *, quiet_s: float = 1.0, busy: float = 0.05, limit_s: float = 5.0) -> float:
    """Wait until the server has been idle (under `busy` of a core) for `quiet_s`: at start-up
    it warms up the local models in the background (importing their libraries), which would
    otherwise be counted against the burst's time, CPU and RSS. Not for long: from about 10 s
    after they were made, the generations' safety-net polls fall due and keep it busy."""
    started = time.monotonic()
    while time.monotonic() < started + limit_s:
        before = cpu_s(pid)
        time.sleep(quiet_s)
        if cpu_s(pid) - before < busy * quiet_s:
            break
    return time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--size-mb", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=8, help="MEDIAGEN_WORKERS, and the baseline's concurrency")
    ap.add_argument("--senders", type=int, default=16, help="webhook sender threads in the fake")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra server setting, e.g. MEDIAGEN_STORAGE_BACKEND=fs (repeatable)",
    )
    args = ap.parse_args()

    base = make_wav(int(args.size_mb * 1024 * 1024))
    counter = iter(range(1, 10**9))
    lock = threading.Lock()

    def content(p: FakePrediction, index: int, role: str) -> tuple[bytes, str, str]:
        # Distinct bytes per prediction (the store is content-addressed): patch the last sample.
        with lock:
            k = next(counter)
        data = bytearray(base)
        data[-8:] = k.to_bytes(8, "little")
        return bytes(data), "audio/wav", "wav"

    hold = Script(start_after=10**6, run_for=0.0, logs=())
    with FakeReplicate() as fake, tempfile.TemporaryDirectory(prefix="mg-bench-hooks-") as tmp:
        fake.default_script = hold
        fake.content_for = content
        answered: list[float] = []  # when each webhook delivery got its answer (monotonic)
        deliver = fake._deliver

        def timed_deliver(client: httpx.Client, item: Any) -> None:
            deliver(client, item)
            answered.append(time.perf_counter())

        fake._deliver = timed_deliver  # type: ignore[method-assign]
        for i in range(args.senders - 1):
            threading.Thread(target=fake._send_loop, daemon=True, name=f"fake-sender-{i}").start()

        srv = Server(
            Path(tmp) / "data",
            REPLICATE_API_TOKEN=fake.token,
            MEDIAGEN_REPLICATE_BASE_URL=fake.base_url,
            MEDIAGEN_DOWNLOAD_ALLOWED_HOSTS=fake.delivery_allow_entry,
            MEDIAGEN_WORKERS=str(args.workers),
            MEDIAGEN_RECONCILE_INTERVAL_SECONDS="1",
            **dict(item.split("=", 1) for item in args.env),
        )
        srv.env["MEDIAGEN_PUBLIC_URL"] = srv.url
        with srv:
            headers = {"X-API-Key": srv.admin_key or ""}
            with httpx.Client(base_url=srv.url, headers=headers, timeout=60) as c:

                def create(i: int) -> int:
                    r = c.post("/api/v2/generate/audio", json={"prompt": f"bench track {i}", "duration": 10})
                    r.raise_for_status()
                    return int(r.json()["audio_id"])

                t = time.perf_counter()
                with ThreadPoolExecutor(16) as pool:
                    ids = list(pool.map(create, range(args.n)))
                create_s = time.perf_counter() - t
                assert len(fake.predictions) == args.n, (len(fake.predictions), args.n)
                settle_s = settle(srv.pid)
                rss_before = rss_mb(srv.pid)

                peak = [rss_before]
                sampling = threading.Event()

                def sample() -> None:
                    while not sampling.wait(0.05):
                        peak.append(rss_mb(srv.pid))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()

                cpu0 = cpu_s(srv.pid)
                t0 = time.perf_counter()
                wall0 = datetime.now().astimezone()
                with fake._lock:
                    hold.start_after = 0.0  # every prediction starts and succeeds on the next tick
                done = failed = 0
                deadline = t0 + args.timeout
                while time.perf_counter() < deadline:
                    done = c.get("/api/audio", params={"status": "completed", "limit": 1}).json()["total"]
                    failed = c.get("/api/audio", params={"status": "failed", "limit": 1}).json()["total"]
                    if done + failed >= args.n:
                        break
                    time.sleep(0.05)
                server_s = time.perf_counter() - t0
                server_cpu = cpu_s(srv.pid) - cpu0
                sampling.set()
                sampler.join()
                time.sleep(1.0)
                rss_after = rss_mb(srv.pid)

                latencies: list[float] = []
                for offset in range(0, args.n, 100):
                    items = c.get("/api/audio", params={"limit": 100, "offset": offset}).json()["audio"]
                    for it in items:
                        if it["completed_at"] and it["status"] == "completed":
                            end = datetime.fromisoformat(it["completed_at"].replace("Z", "+00:00"))
                            if end.tzinfo is None:
                                end = end.replace(tzinfo=wall0.tzinfo)
                            latencies.append((end - wall0).total_seconds())
                sample_item = c.get(f"/api/audio/{ids[0]}").json()

            deliveries = fake.deliveries()
            hooks_ok = sum(1 for d in deliveries if d.status_code and 200 <= d.status_code < 300)
            polls = sum(
                1 for r in fake.requests if r.method == "GET" and r.path.startswith("/v1/predictions/")
            )
            fetches = sum(1 for r in fake.requests if r.method == "GET" and r.path.startswith("/delivery/"))

            # Baseline: the same files, fetched plainly with the same concurrency.
            urls = [fake.output_url(p.id, "output.wav") for p in fake.predictions.values()]
            local = threading.local()
            out_dir = Path(tmp) / "plain"
            out_dir.mkdir()

            def fetch(job: tuple[int, str]) -> int:
                i, url = job
                client = getattr(local, "client", None)
                if client is None:
                    client = local.client = httpx.Client(timeout=60, trust_env=False)
                path = out_dir / f"{i}.wav"
                with client.stream("GET", url) as r, path.open("wb") as fh:
                    r.raise_for_status()
                    for chunk in r.iter_bytes(64 * 1024):
                        fh.write(chunk)
                size = path.stat().st_size
                path.unlink()
                return size

            t = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                sizes = list(pool.map(fetch, enumerate(urls)))
            plain_s = time.perf_counter() - t

    mb = len(base) / 1024 / 1024
    ratio = server_s / plain_s
    growth = rss_after - rss_before
    print(
        f"webhook burst: n={args.n}, outputs {mb:.2f} MB WAV each ({args.n * mb:.0f} MB), "
        f"MEDIAGEN_WORKERS={args.workers}{''.join(' ' + item for item in args.env)}"
    )
    print(
        f"  created {args.n} generations through the API in {create_s:.1f} s; "
        f"the server settled {settle_s:.1f} s later"
    )
    print(
        f"  server: {done} completed, {failed} failed, {server_s:.2f} s from release to all stored "
        f"(per asset p50 {pct(latencies, 50):.2f} s, p95 {pct(latencies, 95):.2f} s)"
    )
    print(
        f"          webhooks delivered {hooks_ok}/{len(deliveries)}, output fetches {fetches}, "
        f"prediction polls {polls}; sample: {sample_item['content_type']}, {sample_item['duration']:.2f} s, "
        f"{sample_item['size_bytes']} bytes"
    )
    if answered:
        print(
            f"          webhooks answered from {min(answered) - t0:.2f} s to {max(answered) - t0:.2f} s "
            "after the release"
        )
    print(
        f"  plain httpx download of the same {len(sizes)} files, {args.workers} in parallel: {plain_s:.2f} s"
    )
    print(
        f"  server CPU over the burst: {server_cpu:.1f} s, {server_cpu / args.n * 1000:.0f} ms per asset "
        f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  ratio server/plain: {ratio:.2f} (goal <= 3)")
    print(
        f"  server RSS: before {rss_before:.0f} MB, peak {max(peak):.0f} MB, after {rss_after:.0f} MB, "
        f"growth {growth:+.0f} MB (target <= 100 MB)"
    )
    if done != args.n:
        sys.exit(f"only {done} of {args.n} completed")


if __name__ == "__main__":
    main()
