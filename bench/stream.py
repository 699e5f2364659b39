"""Blob streaming: `mediagen serve` against nginx serving the same bytes as a static file.

    .venv/bin/python bench/stream.py [--size-mb 200] [--ranges 200] [--rounds 3] [--route data]

Starts `python -m mediagen.cli serve` on a fresh data dir (so it prints its first admin key),
uploads one blob through `PUT /api/blobs` (or, with `--route data`, the same bytes behind a WAV
header as an audio asset, served by `GET /api/audio/{id}/data` with its row lookup and tenant
scoping), starts nginx (installed with apt-get if missing) on another loopback port with its own
temporary config, and measures both in the same run:

* full download throughput, best of `--rounds`;
* latency of `--ranges` random 1 MiB ranges over one keep-alive connection (p50, p95);
* mediagen's RSS growth from just before the upload to the peak of the whole run.

Targets (issue 14): throughput >= 0.8x nginx, range p50 <= 2x nginx, RSS growth <= 50 MB. The
client is `http.client` reading into one reused buffer, so it costs both servers the same and
little. Both servers get the same requests, interleaved round by round, so machine noise hits
both. Before the upload the bench waits until mediagen has settled (its CPU idle and its RSS
steady): `serve` warms up in the background for a few seconds after it first answers (the
device lane's warm-up), and that is neither byte serving nor its memory. The storage backend is
mediagen's default (db) unless `--env MEDIAGEN_STORAGE_BACKEND=fs` (or s3: see bench/s3.py).
The load average is printed at the start and the end: on a shared machine, read the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import in_workdir  # noqa: E402

MiB = 1024 * 1024
RANGE_BYTES = MiB
TARGET_THROUGHPUT_RATIO = 0.8
TARGET_P50_RATIO = 2.0
TARGET_RSS_MB = 50.0


# Helpers -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_payload(path: Path, size: int, header: bytes = b"") -> str:
    """Deterministic bytes after `header`, written piece by piece (never all in memory); returns
    the sha256 of the whole file."""
    block = random.Random(2024).randbytes(MiB + 7)  # odd length: pieces never align with chunks
    digest = hashlib.sha256(header)
    with path.open("wb") as out:
        out.write(header)
        index = written = 0
        while written < size:
            piece = (index.to_bytes(8, "big") + block[8:])[: size - written]
            out.write(piece)
            digest.update(piece)
            written += len(piece)
            index += 1
    return digest.hexdigest()


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_settled(pid: int, *, timeout: float = 120.0) -> float:
    """Wait until a process tree is idle: under 5 % of a core and RSS within 2 MB over one second,
    twice in a row. Returns the seconds waited (the timeout ends the wait, not the bench)."""
    process = psutil.Process(pid)
    tree = [process, *process.children(recursive=True)]
    started = time.monotonic()
    quiet = 0
    for member in tree:
        member.cpu_percent()
    rss = sum(member.memory_info().rss for member in tree)
    while quiet < 2 and time.monotonic() - started < timeout:
        time.sleep(1.0)
        cpu = sum(member.cpu_percent() for member in tree)
        now = sum(member.memory_info().rss for member in tree)
        quiet = quiet + 1 if cpu < 5.0 and abs(now - rss) < 2e6 else 0
        rss = now
    return time.monotonic() - started


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


class RssSampler:
    """Peak RSS of a process tree, sampled every 20 ms in the background."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.current()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.current())
            except psutil.NoSuchProcess:
                return
            time.sleep(0.02)

    def start(self) -> RssSampler:
        self.baseline = self.peak = self.current()
        self._thread.start()
        return self

    def finish(self) -> float:
        self._stop.set()
        self._thread.join()
        return (self.peak - self.baseline) / 1e6


# The two servers ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    full_mbps: list[float] = field(default_factory=list)
    range_ms: list[float] = field(default_factory=list)


def start_mediagen(
    workdir: Path, command: list[str], extra_env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int, str]:
    """`mediagen serve` on a fresh data dir; returns the process, its port and the admin key."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAGEN_", "REPLICATE_"))}
    env |= {
        "MEDIAGEN_DATA_DIR": str(workdir / "data"),
        "MEDIAGEN_HOST": "127.0.0.1",
        "MEDIAGEN_PORT": str(port),
        "MEDIAGEN_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env |= extra_env
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    found = threading.Event()
    key: list[str] = []
    tail: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            del tail[:-40]
            match = re.match(r"^Admin API key: (\S+)$", line)
            if match:
                key.append(match.group(1))
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 90
    while not found.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError("mediagen printed no 'Admin API key:' line:\n" + "\n".join(tail))
    try:
        wait_http(port, "/health", proc)
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"{exc}\n" + "\n".join(tail)) from exc
    return proc, port, key[0]


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("nginx is not installed; run `sudo apt-get install -y nginx` and retry")
    print("installing nginx (apt-get install -y nginx) ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "nginx"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(workdir: Path, static: Path) -> tuple[subprocess.Popen[bytes], int]:
    """nginx in the foreground (a child we stop), one worker, sendfile, its own temp paths."""
    port = free_port()
    prefix = workdir / "nginx"
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    temp_paths = "\n".join(
        f"  {kind}_temp_path {prefix / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "logs" / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
{temp_paths}
  server {{
    listen 127.0.0.1:{port};
    root {static};
    location / {{ }}
  }}
}}
"""
    )
    proc = subprocess.Popen(
        [nginx_binary(), "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_http(port, "/", proc, timeout=20)
    return proc, port


# Measurements ------------------------------------------------------------------------------------


def _send_file(port: int, key: str, payload: Path, method: str, path: str) -> dict[str, object]:
    """Stream `payload` as the body of one request (1 MiB writes); the 201 answer's JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900, blocksize=MiB)
    with payload.open("rb") as body:
        conn.request(
            method, path, body=body, headers={"X-API-Key": key, "Content-Length": str(payload.stat().st_size)}
        )
        response = conn.getresponse()
        text = response.read()
    conn.close()
    if response.status != 201:
        raise RuntimeError(f"{method} {path} failed: {response.status} {text[:300]!r}")
    return json.loads(text)  # type: ignore[no-any-return]


def upload(port: int, key: str, payload: Path) -> dict[str, object]:
    """The payload as a bare blob (`PUT /api/blobs`)."""
    return _send_file(port, key, payload, "PUT", "/api/blobs")


def wav_header(data_bytes: int) -> bytes:
    """A 44-byte PCM WAV header (stereo, 48 kHz, 16-bit) for `data_bytes` of samples: any bytes
    are valid samples, so the payload becomes an audio file that `POST /api/audio/upload` takes."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 2, 48000, 48000 * 4, 4, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def upload_asset(port: int, key: str, payload: Path) -> dict[str, object]:
    """The payload as an audio asset (probed and derived like any upload); its JSON."""
    return _send_file(port, key, payload, "POST", "/api/audio/upload?title=bench")


def drain(response: http.client.HTTPResponse, buffer: memoryview, digest: Any = None) -> int:
    total = 0
    while True:
        count = response.readinto(buffer)
        if not count:
            return total
        if digest is not None:
            digest.update(buffer[:count])
        total += count


def full_download(target: Target, size: int, buffer: memoryview, *, verify: str | None = None) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=600)
    digest = hashlib.sha256() if verify else None
    started = time.perf_counter()
    conn.request("GET", target.path, headers=target.headers)
    response = conn.getresponse()
    got = drain(response, buffer, digest)
    elapsed = time.perf_counter() - started
    conn.close()
    if response.status != 200 or got != size:
        raise RuntimeError(f"{target.name}: full download gave {response.status} with {got} of {size} bytes")
    if digest is not None and digest.hexdigest() != verify:
        raise RuntimeError(f"{target.name}: downloaded bytes do not match the upload")
    return size / elapsed / 1e6


def range_latencies(target: Target, offsets: list[int], buffer: memoryview, payload: Path) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
    times: list[float] = []
    with payload.open("rb") as reference:
        for index, start in enumerate(offsets):
            end = start + RANGE_BYTES - 1
            check = hashlib.sha256() if index % 25 == 0 else None  # spot-check the bytes
            started = time.perf_counter()
            conn.request("GET", target.path, headers={**target.headers, "Range": f"bytes={start}-{end}"})
            response = conn.getresponse()
            got = drain(response, buffer, check)
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 206 or got != RANGE_BYTES:
                raise RuntimeError(f"{target.name}: range {start}-{end} gave {response.status}, {got} bytes")
            if check is not None:
                reference.seek(start)
                if hashlib.sha256(reference.read(RANGE_BYTES)).hexdigest() != check.hexdigest():
                    raise RuntimeError(f"{target.name}: range {start}-{end} returned the wrong bytes")
    conn.close()
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# Main --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> int:
    static = workdir / "static"
    static.mkdir()
    as_asset = args.route == "data"
    # The data route serves an asset: the same deterministic bytes, behind a WAV header.
    header = wav_header(args.size_mb * MiB) if as_asset else b""
    size = args.size_mb * MiB + len(header)
    payload = static / ("take.wav" if as_asset else "blob.bin")
    print(f"writing a {args.size_mb} MiB payload ...", flush=True)
    sha = write_payload(payload, args.size_mb * MiB, header)
    # nginx's worker may run as another user: let it traverse and read the bench directory.
    for path in (workdir, static):
        path.chmod(0o755)
    payload.chmod(0o644)

    mediagen = nginx = None
    try:
        extra_env = dict(item.split("=", 1) for item in args.env)
        if as_asset:
            extra_env.setdefault("MEDIAGEN_MAX_UPLOAD_BYTES", str(size + MiB))
        mediagen, mg_port, api_key = start_mediagen(workdir, shlex.split(args.serve_cmd), extra_env)
        print(f"mediagen up on :{mg_port} (pid {mediagen.pid})", flush=True)
        nginx, ng_port = start_nginx(workdir, static)
        print(f"nginx up on :{ng_port}", flush=True)
        waited = wait_settled(mediagen.pid)
        print(f"mediagen settled after {waited:.0f} s; load average {load_average()}", flush=True)

        if as_asset:
            # Ingest (probe, waveform, loudness) is not byte serving: memory counts from after it.
            started = time.perf_counter()
            asset = upload_asset(mg_port, api_key, payload)
            upload_mbps = size / (time.perf_counter() - started) / 1e6
            wait_settled(mediagen.pid)
            rss = RssSampler(mediagen.pid).start()
            route = f"/api/audio/{asset['id']}/data"
        else:
            rss = RssSampler(mediagen.pid).start()
            started = time.perf_counter()
            created = upload(mg_port, api_key, payload)
            upload_mbps = size / (time.perf_counter() - started) / 1e6
            if created.get("key") != sha or created.get("size") != size:
                raise RuntimeError(f"upload answered {created}, expected key {sha}")
            route = f"/api/blobs/{sha}"

        targets = [
            Target("mediagen", mg_port, route, {"X-API-Key": api_key}),
            Target("nginx", ng_port, f"/{payload.name}"),
        ]
        buffer = memoryview(bytearray(MiB))
        full_download(targets[0], size, buffer, verify=sha)  # correctness, and warms caches
        full_download(targets[1], size, buffer)
        for _ in range(args.rounds):
            for target in targets:
                target.full_mbps.append(full_download(target, size, buffer))
        rng = random.Random(7)
        offsets = [rng.randrange(0, size - RANGE_BYTES) for _ in range(args.ranges)]
        block = max(1, len(offsets) // 4)
        for begin in range(0, len(offsets), block):  # interleave in blocks so drift hits both
            for target in targets:
                target.range_ms += range_latencies(target, offsets[begin : begin + block], buffer, payload)
        growth = rss.finish()
    finally:
        stop(mediagen)
        stop(nginx)

    mg, ng = targets
    throughput_ratio = max(mg.full_mbps) / max(ng.full_mbps)
    p50_ratio = percentile(mg.range_ms, 0.5) / percentile(ng.range_ms, 0.5)
    p95_ratio = percentile(mg.range_ms, 0.95) / percentile(ng.range_ms, 0.95)
    checks = [
        throughput_ratio >= TARGET_THROUGHPUT_RATIO,
        p50_ratio <= TARGET_P50_RATIO,
        growth <= TARGET_RSS_MB,
    ]
    ok = ["ok" if passed else "MISSED" for passed in checks]

    backend = dict(item.split("=", 1) for item in args.env).get("MEDIAGEN_STORAGE_BACKEND", "db")
    print()
    print(f"backend {backend}; load average at the end {load_average()} ({os.cpu_count()} CPUs)")
    print(f"blob: {args.size_mb} MiB, {args.rounds} full downloads and {args.ranges} 1 MiB ranges each")
    if as_asset:
        print(f"route {mg.path}; upload through POST /api/audio/upload (with ingest): {upload_mbps:.0f} MB/s")
    else:
        print(f"route {mg.path}; upload through PUT /api/blobs: {upload_mbps:.0f} MB/s")
    print(f"{'':28}{'mediagen':>10}{'nginx':>10}{'ratio':>8}  target")
    print(
        f"{'full download, MB/s (best)':28}{max(mg.full_mbps):>10.0f}{max(ng.full_mbps):>10.0f}"
        f"{throughput_ratio:>8.2f}  >= {TARGET_THROUGHPUT_RATIO}x  {ok[0]}"
    )
    print(
        f"{'1 MiB range p50, ms':28}{percentile(mg.range_ms, 0.5):>10.2f}"
        f"{percentile(ng.range_ms, 0.5):>10.2f}{p50_ratio:>8.2f}  <= {TARGET_P50_RATIO}x  {ok[1]}"
    )
    print(
        f"{'1 MiB range p95, ms':28}{percentile(mg.range_ms, 0.95):>10.2f}"
        f"{percentile(ng.range_ms, 0.95):>10.2f}{p95_ratio:>8.2f}"
    )
    print(f"{'mediagen RSS growth, MB':28}{growth:>10.1f}{'':18}  <= {TARGET_RSS_MB:.0f}    {ok[2]}")
    return 0 if all(checks) or not args.strict else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=200, help="blob size in MiB (default 200)")
    parser.add_argument("--ranges", type=int, default=200, help="random 1 MiB ranges per server")
    parser.add_argument("--rounds", type=int, default=3, help="full downloads per server (best counts)")
    parser.add_argument(
        "--route",
        choices=["blobs", "data"],
        default="blobs",
        help="blobs: GET /api/blobs/{sha} (admin key); data: GET /api/audio/{id}/data, the asset "
        "route with its row lookup and tenant scoping (the payload is uploaded as a WAV); "
        "RSS growth then counts from after the upload's ingest",
    )
    parser.add_argument(
        "--serve-cmd",
        default=f"{shlex.quote(sys.executable)} -m mediagen.cli serve",
        help="how to start mediagen (default: this interpreter, `-m mediagen.cli serve`)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for mediagen, e.g. MEDIAGEN_STORAGE_BACKEND=fs (repeatable)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.size_mb < 2:
        parser.error("--size-mb must be at least 2")
    if any("=" not in item for item in args.env):
        parser.error("--env takes NAME=VALUE")
    return in_workdir("mediagen-bench-", args.keep, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
