"""A small HTTP client for the observation server's tests: real requests from a thread (the
server runs on the real clock), each bounded by a real timeout."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import trio

TIMEOUT = 10.0  # real seconds for any one request


def request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request (blocking: call it in a thread)."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def fetch(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """`request` in a worker thread, from a Trio test."""
    return await trio.to_thread.run_sync(lambda: request(url, method, headers))


async def get_json(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    """The JSON body of a request that must answer 200."""
    status, _, body = await fetch(url, method, headers)
    assert status == 200, (status, body)
    return json.loads(body)


def read_events(
    url: str, wanted: int | str, connected: Any, headers: dict[str, str] | None = None
) -> list[tuple[str | None, Any]]:
    """Read events from an SSE stream (blocking) until `wanted` of them, or until one of the
    kind `wanted` names; call `connected()` once the stream is open. Returns [(kind, data)]."""
    req = urllib.request.Request(url, headers=headers or {})
    events: list[tuple[str | None, Any]] = []
    with urllib.request.urlopen(req, timeout=TIMEOUT) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = stream.readline()
        assert first.startswith(b":"), first
        connected()
        kind = None
        while not _done(events, wanted):
            line = stream.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[len("data: ") :])))
    return events


def _done(events: list[tuple[str | None, Any]], wanted: int | str) -> bool:
    if isinstance(wanted, int):
        return len(events) >= wanted
    return bool(events) and events[-1][0] == wanted
