"""A small real HTTP server for `spaceactors top` tests: it answers ``GET /status`` with
documents of the observation contract, built from a real system's actor statuses.

`observed_run` runs a system in virtual time (actors that handle messages and crash), and
takes a status document at each of a few moments; `StatusServer` serves them on 127.0.0.1:0,
one per request (the last one again once they run out), honouring ``sort`` and ``limit``.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio
import trio.testing

import spaceactors as sa

WALL_START = 1_800_000_000.0
"""The wall time of the first document; later ones add the simulated seconds since."""


class Worker(sa.Actor):
    """Handles ints; a negative one is a bug (it raises)."""

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        if message < 0:
            raise ValueError(f"fuel < 0 ({message})")
        return message


def document(
    system: sa.ActorSystem,
    refs: dict[str, sa.ActorRef],
    kinds: dict[str, str],
    crashes: dict[str, list[float]],
) -> dict[str, Any]:
    """The /status document of the contract, from the actors' own statuses now."""
    now = trio.current_time()
    actors = []
    for name, ref in refs.items():
        status = ref.status()
        times = crashes.get(name, [])
        actors.append(
            {
                "path": f"user/{name}",
                "name": name,
                "kind": kinds[name],
                "supervisor": False,
                "state": status.state.value,
                "mailbox_depth": status.mailbox_depth,
                "mailbox_capacity": status.mailbox_size,
                "handled": status.handled,
                "restarts": status.restarts,
                "crashes": len(times),
                "last_crash": (
                    None
                    if not times
                    else {"time": times[-1], "reason": status.last_error or "?"}
                ),
            }
        )
    return {
        "version": 1,
        "clock": "virtual",
        "sim_time": now,
        "wall_time": WALL_START + now,
        "elapsed": now,
        "speed": None,
        "paused": False,
        "totals": {
            "actors": len(actors),
            "messages_handled": sum(a["handled"] for a in actors),
            "restarts": sum(a["restarts"] for a in actors),
            "crashes": sum(a["crashes"] for a in actors),
            "dead_letters": system.dead_letters.total,
            "reliable_retries": 0,
            "reliable_failures": 0,
        },
        "sim": None,
        "actors": actors,
        "actors_total": len(actors),
    }


def observed_run(
    plan: dict[str, tuple[int, int, int]],
    *,
    readings: int = 2,
    names: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run one `Worker` per name of `plan` for `readings` simulated seconds: each second,
    name gets ``(good, bad, queued)`` messages: ``good`` handled, ``bad`` crash it, ``queued``
    wait in its mailbox (it is paused until the next second); a document after each second.
    `names` maps a plan key to the actor's real name (hostile names, say)."""
    names = names or {}

    async def main() -> list[dict[str, Any]]:
        docs = []
        crashes: dict[str, list[float]] = {}
        async with sa.open_system(seed=3, max_restarts=10_000, within=1.0) as system:
            refs = {}
            for key in plan:
                name = names.get(key, key)
                refs[name] = await system.spawn(Worker, name=name, mailbox_size=64)
            kinds = dict.fromkeys(refs, "Worker")
            for _ in range(readings):
                for key, (good, bad, queued) in plan.items():
                    name = names.get(key, key)
                    refs[name].resume()  # paused with messages queued the second before
                    for value in range(good):
                        await refs[name].ask(value)
                    for _ in range(bad):
                        await refs[name].send(-1)
                        await trio.sleep(0.01)
                        crashes.setdefault(name, []).append(trio.current_time() - 0.01)
                    if queued:
                        refs[name].pause()
                        await trio.sleep(0.01)
                        for value in range(queued):
                            refs[name].try_send(value)
                await trio.sleep(1.0 - trio.current_time() % 1.0)
                docs.append(document(system, refs, kinds, crashes))
        return docs

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


SORT_FIELDS = {
    "restarts": "restarts",
    "mailbox": "mailbox_depth",
    "handled": "handled",
    "rate": "handled",
}


class StatusServer:
    """Serves `documents` at /status, one per request; anything else is 404."""

    def __init__(self, documents: list[Any], *, content: bytes | None = None) -> None:
        self.documents = documents
        self.content = content  # served as is instead (a server that is not ours)
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                parts = urllib.parse.urlsplit(self.path)
                if server.content is not None:
                    self._answer(200, server.content, "text/html")
                    return
                if parts.path != "/status":
                    self._answer(404, b'{"error": "not found"}', "application/json")
                    return
                index = min(len(server.requests) - 1, len(server.documents) - 1)
                body = server.select(server.documents[index], parts.query)
                self._answer(200, json.dumps(body).encode(), "application/json")

            def _answer(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @staticmethod
    def select(doc: Any, query: str) -> Any:
        """The contract's ``sort`` and ``limit`` applied to a document."""
        if not isinstance(doc, dict) or "actors" not in doc:
            return doc
        params = urllib.parse.parse_qs(query)
        actors = list(doc["actors"])
        sort = params.get("sort", [None])[0]
        if sort is not None:
            field = SORT_FIELDS[sort]
            actors.sort(key=lambda a: -a[field])
        limit = int(params.get("limit", ["500"])[0])
        return {**doc, "actors": actors[:limit], "actors_total": len(doc["actors"])}


@contextmanager
def serving(documents: list[Any], *, content: bytes | None = None) -> Iterator[StatusServer]:
    server = StatusServer(documents, content=content)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=10)
