"""The event stream across processes, read as it comes: `mediagen serve` answers requests only, a
separate `mediagen worker` process makes the media, and httpx follows `GET /api/events` on the API
process (on PostgreSQL, where ids can commit out of order, when one is reachable; else SQLite).
Disconnecting and resuming with `Last-Event-ID` loses nothing and repeats nothing; a key limited
to one client never sees another's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, PostgresDatabase, make_server, postgres_available

STATUS_TYPES = {"generation.created", "generation.processing", "generation.progress", "generation.completed"}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An API process without workers, and a worker process, on one database (one database
    only: the two processes take most of a minute to start on a busy machine)."""
    pg = PostgresDatabase() if postgres_available() else None
    env = {"MEDIAGEN_RUN_CONSUMER": "false", "MEDIAGEN_EVENTS_POLL_SECONDS": "0.1"}
    if pg is not None:
        env["MEDIAGEN_DATABASE_URL"] = pg.url
    srv = make_server(tmp_path_factory.mktemp("events"), **env).start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "mediagen.cli", "worker"],
        cwd=srv.data_dir.parent,
        env=srv.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield srv
    finally:
        worker.terminate()
        worker.wait(20)
        srv.stop()
        if pg is not None:
            pg.drop()


class Stream:
    """One open `GET /api/events`, parsed frame by frame as the lines arrive."""

    def __init__(
        self, srv: LiveServer, key: str, headers: dict[str, str] | None = None, **params: Any
    ) -> None:
        self.http = httpx.Client(base_url=srv.url, timeout=httpx.Timeout(30.0, connect=5.0))
        self.cm = self.http.stream(
            "GET",
            "/api/events",
            params=params,
            headers={"X-API-Key": key, "Accept": "text/event-stream", **(headers or {})},
        )
        self.response = self.cm.__enter__()
        assert self.response.status_code == 200, self.response.read()
        self.lines = self.response.iter_lines()
        self.frames: list[dict[str, Any]] = []
        assert next(self.lines).startswith("retry:")  # the stream is open: what follows is live

    def next_frame(self) -> dict[str, Any] | None:
        """The next event (None: the server ended the stream)."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if "event" in fields:
                    frame = {
                        **json.loads(fields["data"]),
                        "event_id": int(fields["id"]),
                        "event": fields["event"],
                    }
                    self.frames.append(frame)
                    return frame
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        return None

    def read_until(self, done: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(done(f) for f in self.frames):
            assert time.monotonic() < deadline, f"timed out; got {self.frames}"
            assert self.next_frame() is not None, f"the stream ended early; got {self.frames}"

    def read_to_end(self) -> list[dict[str, Any]]:
        while self.next_frame() is not None:
            pass
        return self.frames

    def close(self) -> None:
        self.cm.__exit__(None, None, None)
        self.http.close()


def generate(srv: LiveServer, key: str | None = None, **body: Any) -> int:
    with srv.client(key) as c:
        r = c.post("/api/v2/generate/audio", json={"prompt": "lofi beat", "duration": 1, **body})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def check_history(frames: list[dict[str, Any]], gen_id: int) -> None:
    mine = [f for f in frames if f["id"] == gen_id]
    assert [f["seq"] for f in mine] == list(range(1, len(mine) + 1)), mine
    types = [f["event"] for f in mine]
    assert types[0] == "generation.created" and types[-1] == "generation.completed", types
    assert set(types) <= STATUS_TYPES and types.count("generation.processing") == 1, types
    assert mine[-1]["status"] == "completed" and mine[-1]["data_url"] == f"/api/audio/{gen_id}/data"


def test_a_worker_process_events_reach_a_stream_on_the_api_process_and_resume(split: LiveServer) -> None:
    srv = split
    assert srv.admin_key
    live = Stream(srv, srv.admin_key, kind="audio")
    try:
        ids = [generate(srv), generate(srv)]
        live.read_until(lambda f: f["id"] in ids and f["event"] == "generation.processing")
    finally:
        live.close()  # disconnect mid-way
    seen_live = [f for f in live.frames if f["id"] in ids]
    for gen_id in ids:
        assert srv.wait_for("audio", gen_id, timeout=90)["status"] == "completed"
    resumed = Stream(
        srv, srv.admin_key, headers={"Last-Event-ID": str(live.frames[-1]["event_id"])}, max_seconds=2
    )
    try:
        rest = [f for f in resumed.read_to_end() if f["id"] in ids]
    finally:
        resumed.close()
    whole = Stream(srv, srv.admin_key, since=0, ids=",".join(map(str, ids)), max_seconds=2)
    try:
        log = whole.read_to_end()
    finally:
        whole.close()
    # What the two connections got, together, is the log: nothing missed, nothing twice.
    got = [(f["event_id"], f["id"], f["seq"], f["event"]) for f in seen_live + rest]
    assert got == [(f["event_id"], f["id"], f["seq"], f["event"]) for f in log]
    event_ids = [f["event_id"] for f in live.frames + resumed.frames]
    assert event_ids == sorted(event_ids) and len(set(event_ids)) == len(event_ids)
    for gen_id in ids:
        check_history(log, gen_id)


def test_a_key_limited_to_one_client_never_receives_another_clients_events(split: LiveServer) -> None:
    srv = split
    with srv.client() as c:
        for client in ("north", "south"):
            assert c.post("/api/clients", json={"id": client, "name": client.title()}).status_code in (
                201,
                409,
            )
        made = c.post("/api/keys", json={"name": "north only", "clients": ["north"]})
        assert made.status_code == 201, made.text
        north_key = made.json()["key"]
    live = Stream(srv, north_key)
    try:
        south = generate(srv, client_id="south")
        north = generate(srv, client_id="north")
        live.read_until(lambda f: f["id"] == north and f["event"] == "generation.completed")
    finally:
        live.close()
    assert srv.wait_for("audio", south, timeout=90)["status"] == "completed"
    assert {f["client_id"] for f in live.frames} == {"north"}
    check_history(live.frames, north)
    replay = Stream(srv, north_key, since=0, max_seconds=1)
    try:
        assert south not in {f["id"] for f in replay.read_to_end()}
    finally:
        replay.close()
