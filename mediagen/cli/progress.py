"""Waiting for generations from the shell: their state as it changes, read from the server's event
stream (`GET /api/events?ids=…`), or by polling where no stream can be had (an older server, a
proxy that buffers, a connection that keeps dropping).

The stream gives progress the moment the engine reports it, at no cost while nothing happens.
After every (re)connect the assets are read once, so a change made before the stream was open
is never waited for; a reconnect sends `Last-Event-ID`, so nothing in between is lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

TERMINAL = frozenset({"completed", "failed", "canceled"})
READ_TIMEOUT_S = 40.0  # the server writes at least every 15 s (a heartbeat comment)
RECONNECTS = 3  # failed connections in a row before we poll instead
POLL_EVERY_S = 0.5

Item = dict[str, Any]
GetItem = Callable[[int], Item]  # the asset's JSON (the caller says what a 4xx means)
Show = Callable[[Item], None]


class StreamUnavailable(Exception):
    """No usable event stream: poll instead."""


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str | None, str, Item]]:
    """(id, event type, JSON data) for each event in a text/event-stream; comments are skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                try:
                    data = json.loads(fields["data"])
                except json.JSONDecodeError:
                    data = None
                if isinstance(data, dict):
                    yield fields.get("id"), fields.get("event", "message"), data
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields[name]}\n{value}" if name == "data" and name in fields else value


def follow(
    http: httpx.Client, ids: list[int], deadline: float, get_item: GetItem, show: Show
) -> dict[int, Item]:
    """Each asset's latest state, once all are finished or `deadline` (monotonic) passes.
    Raises StreamUnavailable when the stream cannot be read (the caller polls)."""
    items: dict[int, Item] = {}
    last_id: str | None = None
    failures = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return items
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
        params = {"ids": ",".join(map(str, ids)), "max_seconds": f"{min(remaining, 3600.0):.1f}"}
        timeout = httpx.Timeout(connect=5.0, read=READ_TIMEOUT_S, write=10.0, pool=10.0)
        try:
            with http.stream("GET", "/api/events", params=params, headers=headers, timeout=timeout) as resp:
                if resp.status_code != 200:
                    raise StreamUnavailable(f"the event stream answered {resp.status_code}")
                failures = 0
                for gen_id in ids:  # open now: read once what happened before
                    items[gen_id] = get_item(gen_id)
                    show(items[gen_id])
                if all(items[i]["status"] in TERMINAL for i in ids):
                    return items
                for event_id, _type, data in sse_events(resp.iter_lines()):
                    last_id = event_id or last_id
                    ident = data.get("id")
                    if not isinstance(ident, int) or ident not in items:
                        continue
                    if data.get("status") in TERMINAL:
                        items[ident] = get_item(ident)  # the whole asset: what the caller saves
                    else:
                        fields = ("status", "progress", "progress_note")
                        items[ident] = {**items[ident], **{k: data.get(k) for k in fields}}
                    show(items[ident])
                    if all(items[i]["status"] in TERMINAL for i in ids):
                        return items
                    if time.monotonic() > deadline:
                        return items
        except httpx.TransportError as exc:
            failures += 1
            if failures > RECONNECTS:
                raise StreamUnavailable(str(exc)) from exc
            time.sleep(min(5.0, 0.5 * 2**failures))
        # The server ended the stream (its `max_seconds`) or the connection dropped: go on.


def poll(ids: list[int], deadline: float, get_item: GetItem, show: Show) -> dict[int, Item]:
    """`follow` without a stream: read each unfinished asset every half second."""
    items: dict[int, Item] = {}
    while True:
        for gen_id in ids:
            if gen_id not in items or items[gen_id]["status"] not in TERMINAL:
                items[gen_id] = get_item(gen_id)
                show(items[gen_id])
        if all(items[i]["status"] in TERMINAL for i in ids) or time.monotonic() > deadline:
            return items
        time.sleep(POLL_EVERY_S)
