"""Helpers shared by the benchmarks: a live `mediagen serve`, percentiles, RSS."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """`mediagen serve` in a child process; `admin_key` parsed from its first-start output."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGEN_")}
        self.env.update(
            {
                "MEDIAGEN_DATA_DIR": str(data_dir),
                "MEDIAGEN_PORT": str(self.port),
                "MEDIAGEN_LOG_LEVEL": "WARNING",
                "MEDIAGEN_GENERATE_RATE_LIMIT_PER_MINUTE": "0",
                "PYTHONUNBUFFERED": "1",
                **env,
            }
        )
        self.admin_key: str | None = None
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mediagen.cli", "serve"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + "\n".join(self.lines[-30:]))
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def _pump(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            m = re.match(r"^Admin API key: (\S+)", line)
            if m:
                self.admin_key = m.group(1)

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def pid(self) -> int:
        assert self.proc
        return self.proc.pid


def in_workdir(prefix: str, keep: bool, run: Callable[[Path], int]) -> int:
    """Run a benchmark in a fresh temporary directory, removed afterwards unless `keep`."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return run(workdir)
    finally:
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
