"""Run a real Cog HTTP server (`python -m cog.server.http`) for tests, on a free 127.0.0.1 port.

Not a fake: the `cog` package from PyPI ships the same server that `cog build` puts in a model
image, and it runs on bare Python without Docker or a GPU. It serves the small predictor in
`tests/fakes/cog_predictor/`.

Which interpreter runs it:
- `MEDIAGEN_TEST_COG_PYTHON`, when set (e.g. a separate venv holding `cog<0.17`, the pure-Python
  FastAPI server, whose pins clash with our fastapi/starlette/attrs);
- otherwise the test interpreter itself when it can import `cog` (cog>=0.17 is the Rust `coglet`
  server with no Python web dependencies, so it installs next to ours);
- otherwise nothing, and `find_cog_python()` returns None so tests can skip with a reason.

Both server generations are driven the same way: cog<0.17 reads `predict:` from cog.yaml, coglet
reads `COG_PREDICT_TYPE_STUB` and the input schema from `.cog/openapi_schema.json` (which
`cog build` would generate; the predictor directory ships it so coglet validates inputs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

PREDICTOR_DIR = Path(__file__).resolve().parent / "cog_predictor"
COG_PIP_SPEC = "cog==0.23.1"


def find_cog_python() -> str | None:
    """The interpreter that can run `python -m cog.server.http`, or None."""
    explicit = os.environ.get("MEDIAGEN_TEST_COG_PYTHON")
    if explicit:
        return explicit
    if importlib.util.find_spec("cog") is not None:
        return sys.executable
    return None


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; the race window is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CogServer:
    """One Cog server subprocess serving a copy of the test predictor.

    The predictor directory is copied into `workdir` so the server's imports and any files it
    writes stay out of the source tree. Every prediction the model runs appends its prompt to
    `runs_log`, which tests read to count runs.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        python: str | None = None,
        port: int | None = None,
        setup_seconds: float = 0.0,
    ) -> None:
        resolved = python or find_cog_python()
        if resolved is None:
            raise RuntimeError(f"no interpreter can import cog; pip install '{COG_PIP_SPEC}'")
        self.python = resolved
        self.workdir = workdir
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.setup_seconds = setup_seconds
        self.model_dir = workdir / "model"
        self.runs_dir = workdir / "runs"
        self.log_path = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def runs_log(self) -> Path:
        return self.runs_dir / "runs.log"

    def runs(self) -> list[str]:
        """Prompts of every prediction the model has run, in order."""
        if not self.runs_log.exists():
            return []
        return self.runs_log.read_text(encoding="utf-8").splitlines()

    def start(self, *, ready_timeout: float = 60.0, wait_for_setup: bool = True) -> CogServer:
        """Start the server and wait until it answers: READY (setup done), or any status at all
        when `wait_for_setup` is false."""
        shutil.copytree(PREDICTOR_DIR, self.model_dir, dirs_exist_ok=True)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PORT": str(self.port),
            "COG_PREDICT_TYPE_STUB": "predict.py:Predictor",
            "MEDIAGEN_COG_RUNS_DIR": str(self.runs_dir),
            "MEDIAGEN_COG_SETUP_SECONDS": str(self.setup_seconds),
            # coglet starts its model worker as plain `python`: make that this interpreter's.
            "PATH": os.pathsep.join([str(Path(self.python).parent), os.environ.get("PATH", "")]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [self.python, "-m", "cog.server.http", "--host", "127.0.0.1"],
                cwd=self.model_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() also ends the model worker
            )
        finally:
            log.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Cog server exited with {self.process.returncode}:\n{self.log_tail()}")
            health = self.health()
            if health and (health.get("status") == "READY" or not wait_for_setup):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Cog server not READY after {ready_timeout}s:\n{self.log_tail()}")

    def health(self) -> dict[str, Any] | None:
        """The /health-check body, or None when the server does not answer."""
        return self._get_json("/health-check")

    @property
    def cog_version(self) -> tuple[int, ...]:
        """The server's version from its index document, e.g. (0, 23, 1)."""
        index = self._get_json("/") or {}
        parts = str(index.get("cog_version", "0")).split("+")[0].split(".")
        return tuple(int(part) if part.isdigit() else 0 for part in parts)

    @property
    def inlines_async_files(self) -> bool:
        """Whether async outputs come back as data: URLs (coglet) rather than container paths.

        cog<0.17's Python server only turns files into data: URLs for synchronous predictions;
        async ones need --upload-url, which these tests do not run.
        """
        return self.cog_version >= (0, 17)

    def _get_json(self, path: str) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}", timeout=2) as response:
                body = json.loads(response.read())
        except (OSError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def wait_until_idle(self, timeout: float = 15.0) -> None:
        """Block until the single prediction slot is free again (status READY)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health and health.get("status") == "READY":
                return
            time.sleep(0.05)
        raise TimeoutError(f"Cog server still busy after {timeout}s: {self.health()}")

    def kill(self) -> None:
        """Crash the server: SIGKILL its whole process group, no shutdown handlers."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Ask the server to exit (SIGTERM), then kill its group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            self._signal_group(signal.SIGKILL)  # a model worker may have outlived the server
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=5)
        self._signal_group(signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)  # the group this helper created with start_new_session
        except ProcessLookupError:
            pass

    def __enter__(self) -> CogServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
