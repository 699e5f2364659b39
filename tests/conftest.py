"""Shared fixtures: a live `mediagen serve` on 127.0.0.1, and throwaway PostgreSQL databases."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("MEDIAGEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


class PostgresDatabase:
    """A fresh database per use, dropped afterwards."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"mediagen_t_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.url = f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not postgres_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    db = PostgresDatabase()
    try:
        yield db.url
    finally:
        db.drop()


class LiveServer:
    """`mediagen serve` as a child process, the way a user runs it."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.admin_key: str | None = None
        self.admin_email: str | None = None
        self.admin_password: str | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAGEN_", "REPLICATE_"))}
        env.update(
            {
                "MEDIAGEN_DATA_DIR": str(self.data_dir),
                "MEDIAGEN_PORT": str(self.port),
                "MEDIAGEN_HOST": "127.0.0.1",
                "MEDIAGEN_LOG_LEVEL": "WARNING",
                "MEDIAGEN_GENERATE_RATE_LIMIT_PER_MINUTE": "0",
                "MEDIAGEN_RECONCILE_INTERVAL_SECONDS": "0.5",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> LiveServer:
        if self.proc is not None and self.proc.poll() is None:
            # A second start would orphan the running process (nothing would ever stop it).
            raise RuntimeError("this server is already running")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mediagen.cli", "serve"],
            cwd=self.data_dir.parent,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError("server exited:\n" + "\n".join(self.output[-50:]))
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy:\n" + "\n".join(self.output[-50:]))

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            for label, attr in (
                ("Admin API key", "admin_key"),
                ("Admin email", "admin_email"),
                ("Admin password", "admin_password"),
            ):
                m = re.match(rf"^{label}: (\S+)$", line)
                if m:
                    setattr(self, attr, m.group(1))

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"X-API-Key": key or self.admin_key or ""}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 30.0), **kw)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, **env: str) -> LiveServer:
        self.stop()
        self.extra_env.update(env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        return self.start()

    def wait_for(
        self, kind_path: str, gen_id: int, *, key: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Poll an asset until it reaches a terminal status."""
        deadline = time.monotonic() + timeout
        with self.client(key) as c:
            while True:
                item = c.get(f"/api/{kind_path}/{gen_id}").json()
                if item.get("status") in ("completed", "failed", "canceled"):
                    return item
                if time.monotonic() > deadline:
                    raise AssertionError(f"{kind_path} {gen_id} still {item.get('status')}: {item}")
                time.sleep(0.1)


def make_server(tmp_path: Path, **env: str) -> LiveServer:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    return LiveServer(data, env)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[LiveServer] = []

    def factory(**env: str) -> LiveServer:
        srv = make_server(tmp_path / f"s{len(started)}", **env)
        started.append(srv)
        return srv.start()

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server per test module (SQLite, synth engine, no tokens)."""
    srv = make_server(tmp_path_factory.mktemp("live")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live_server_any_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The same server on SQLite and on PostgreSQL: the suite's API tests run against both."""
    pg = None
    env: dict[str, str] = {}
    if request.param == "postgres":
        if not postgres_available():
            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
        pg = PostgresDatabase()
        env["MEDIAGEN_DATABASE_URL"] = pg.url
    srv = make_server(tmp_path_factory.mktemp(f"live-{request.param}"), **env).start()
    yield srv
    srv.stop()
    if pg is not None:
        pg.drop()


# Tests that start a `mediagen serve` child process, drive a browser, run the CLI as a subprocess, or
# sweep the whole API are `slow`: the fast core (`pytest -m "not slow"`) is the rest, in-process.
SLOW_FIXTURES = frozenset({"live_server", "live_server_any_db", "server_factory", "srv"})
SLOW_MODULES = (
    "tests/e2e/",
    "tests/web/test_browser.py",
    "tests/web/test_browser_compose.py",
    "tests/web/test_browser_live.py",
    "tests/web/test_share_pages.py",
    "tests/web/test_browser_takes.py",
    "tests/web/test_browser_review.py",
    "tests/api/test_blobs_live.py",
    "tests/api/test_media_memory.py",  # a server process streaming 300 MB
    "tests/api/test_downloads_memory.py",  # a server process zipping 2 GiB
    "tests/api/test_events_live.py",  # an API process and a worker process, one event stream
    "tests/test_cli.py",  # the console script as subprocesses
    # Sweeps of the whole API surface (every operation, every tenant pairing): in-process, but
    # a minute together; they guard the hardening rather than the core.
    "tests/api/test_openapi_conformance.py",
    "tests/api/test_tenant_isolation.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        fixtures = set(getattr(item, "fixturenames", ()))
        if path.startswith(SLOW_MODULES) or fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
