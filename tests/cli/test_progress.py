"""The CLI's wait (`mediagen.cli.progress`): events read off the stream as they come, a reconnect
that resumes with Last-Event-ID and reads the asset again, and polling where no stream answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mediagen.cli import progress


def frame(event_id: int, type_: str, **data: Any) -> str:
    return f"id: {event_id}\nevent: generation.{type_}\ndata: {json.dumps(data)}\n\n"


class Server:
    """Answers /api/events from a list of scripted streams and assets from `state`."""

    def __init__(self, streams: list[tuple[int, str]], state: dict[int, dict[str, Any]]) -> None:
        self.streams = streams
        self.state = state
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/api/events":
            status, body = self.streams.pop(0)
            return httpx.Response(
                status, content=body.encode(), headers={"content-type": "text/event-stream"}
            )
        gen_id = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(200, json=self.state[gen_id])

    def client(self) -> httpx.Client:
        return httpx.Client(base_url="http://mediagen.test", transport=httpx.MockTransport(self))

    def get_item(self, http: httpx.Client) -> progress.GetItem:
        return lambda gen_id: dict(http.get(f"/api/audio/{gen_id}").json())


def test_sse_lines_become_events_and_comments_are_skipped() -> None:
    text = (
        ": connected\n\nretry: 3000\n\n"
        'id: 7\nevent: generation.progress\ndata: {"id": 1,\ndata: "progress": 0.5}\n\n'
    )
    assert list(progress.sse_events(text.split("\n"))) == [
        ("7", "generation.progress", {"id": 1, "progress": 0.5})
    ]


def test_follow_shows_progress_and_returns_the_finished_asset() -> None:
    done = {"id": 5, "status": "completed", "progress": 1.0, "content_type": "audio/mpeg"}
    server = Server(
        [
            (
                200,
                "retry: 3000\n: connected\n\n"
                + frame(10, "processing", id=5, status="processing", progress=None, seq=2)
                + frame(
                    11, "progress", id=5, status="processing", progress=0.4, progress_note="decoding", seq=3
                )
                + frame(12, "completed", id=5, status="completed", progress=1.0, seq=4),
            )
        ],
        {5: {"id": 5, "status": "pending", "progress": None}},
    )
    shown: list[dict[str, Any]] = []
    with server.client() as http:
        get = server.get_item(http)

        def show(item: dict[str, Any]) -> None:
            shown.append(dict(item))
            if item.get("progress") == 0.4:
                server.state[5] = done  # finished by the time the completed event is read

        items = progress.follow(http, [5], deadline=1e12, get_item=get, show=show)
    assert items[5] == done
    assert [(s["status"], s.get("progress")) for s in shown] == [
        ("pending", None),
        ("processing", None),
        ("processing", 0.4),
        ("completed", 1.0),
    ]
    assert shown[2]["progress_note"] == "decoding"
    stream = server.requests[0]
    assert stream.url.params["ids"] == "5" and float(stream.url.params["max_seconds"]) > 0


def test_a_stream_that_ends_is_resumed_with_last_event_id() -> None:
    server = Server(
        [
            (200, frame(20, "processing", id=3, status="processing", seq=2)),
            (200, frame(21, "completed", id=3, status="completed", seq=3)),
        ],
        {3: {"id": 3, "status": "pending"}},
    )
    with server.client() as http:
        get = server.get_item(http)

        def show(item: dict[str, Any]) -> None:
            if item["status"] == "completed" or len(server.streams) == 0:
                server.state[3] = {"id": 3, "status": "completed"}

        items = progress.follow(http, [3], deadline=1e12, get_item=get, show=show)
    assert items[3]["status"] == "completed"
    streams = [r for r in server.requests if r.url.path == "/api/events"]
    assert "last-event-id" not in streams[0].headers
    assert streams[1].headers["last-event-id"] == "20"


def test_no_stream_means_polling() -> None:
    server = Server([(404, '{"detail": "Not Found"}')], {9: {"id": 9, "status": "failed", "error": "x"}})
    with server.client() as http:
        get = server.get_item(http)
        with pytest.raises(progress.StreamUnavailable):
            progress.follow(http, [9], deadline=1e12, get_item=get, show=lambda item: None)
        assert (
            progress.poll([9], deadline=1e12, get_item=get, show=lambda item: None)[9]["status"] == "failed"
        )
