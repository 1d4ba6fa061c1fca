"""Test scaffolding: a stand-in for the observation server, until `spaceactors.observe` lands.

A real actor system runs in virtual time in its own thread (its own `trio.run`); a stdlib HTTP
server in another thread serves the dashboard page and /status, /events and /control documents
read from that system (real `ref.status()` values; a pause that really stops the tick loop).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import queue
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio
import trio.testing

import spaceactors as sa
from spaceactors.ref import ActorRef
from spaceactors.supervisor import Supervisor

PAGE = Path(sa.__file__).parent / "observe" / "static" / "dashboard.html"
TICK = 1.0  # virtual seconds per tick of the loop


class Tick:
    pass


class Worker(sa.Actor):
    async def handle(self, message: object) -> None:
        return None


class Crasher(sa.Actor):
    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def handle(self, message: object) -> None:
        raise ValueError(self.reason)


class StubRun:
    """A running system (in virtual time) and a stand-in observation server for it."""

    def __init__(self, names: list[str], token: str | None, reason: str) -> None:
        self.names, self.token, self.reason = names, token, reason
        self.paused, self.budget = False, 0.0
        self.listeners: list[queue.Queue[tuple[str, dict[str, Any]]]] = []
        self.ready = threading.Event()
        self.crash_times: dict[str, float] = {}
        self.closing = False

    async def main(self) -> None:
        async with sa.open_system(seed=1) as system:
            self.system, self.origin = system, trio.current_time()
            fleet = await system.spawn_supervisor("fleet", max_restarts=10_000, within=1.0)
            refs = []
            for name in self.names:
                await fleet.start_child(sa.ChildSpec(name, Worker))
                refs.append(fleet.child(name))
            await fleet.start_child(sa.ChildSpec("station:ceres", Crasher, args=(self.reason,)))
            crasher = fleet.child("station:ceres")
            self.token_trio, self.wake = trio.lowlevel.current_trio_token(), trio.Event()
            self.scope = trio.CancelScope()
            self.ready.set()
            with self.scope:
                tick = 0
                while True:
                    while self.paused and self.budget <= 0:
                        self.wake = trio.Event()
                        await self.wake.wait()
                    await trio.to_thread.run_sync(time.sleep, 0.02)  # ~50 virtual s per wall s
                    await trio.sleep(TICK)
                    self.budget -= TICK
                    tick += 1
                    for ref in refs:
                        ref.try_send(Tick())
                    if tick % 5 == 0:
                        before = crasher.status().restarts
                        crasher.try_send(Tick())
                        await trio.sleep(0.01)
                        if crasher.status().restarts > before:
                            self.crashed("user/fleet/station:ceres", crasher.status().restarts)
            system.root.request_shutdown()

    def crashed(self, path: str, restarts: int) -> None:
        now = trio.current_time() - self.origin
        self.crash_times[path] = now
        event = {"time": now, "actor": path, "detail": f"ValueError: {self.reason}",
                 "restarts": restarts, "cause": f"ValueError: {self.reason}"}
        for listener in list(self.listeners):
            listener.put(("restart", event))

    def status(self) -> dict[str, Any]:
        actors = list(self._walk(self.system.user, "user"))
        return {
            "version": 1, "clock": "virtual", "sim_time": trio.current_time() - self.origin,
            "wall_time": time.time(), "elapsed": 0.0, "speed": None, "paused": self.paused,
            "totals": {"actors": len(actors), "messages_handled": sum(a["handled"] for a in actors),
                       "restarts": sum(a["restarts"] for a in actors), "crashes": 0,
                       "dead_letters": 0, "reliable_retries": 0, "reliable_failures": 0},
            "sim": None, "actors": actors, "actors_total": len(actors),
        }

    def _walk(self, supervisor: Supervisor, path: str) -> Iterator[dict[str, Any]]:
        for info in supervisor.which_children():
            child = f"{path}/{info.name}"
            handle = info.handle
            if isinstance(handle, Supervisor):
                yield {"path": child, "name": info.name, "kind": "Supervisor", "supervisor": True,
                       "state": "running", "mailbox_depth": 0, "mailbox_capacity": 1,
                       "handled": 0, "restarts": 0, "crashes": 0, "last_crash": None}
                yield from self._walk(handle, child)
            elif isinstance(handle, ActorRef):
                s = handle.status()
                crash = None
                if child in self.crash_times:
                    reason = f"ValueError: {self.reason}"
                    crash = {"time": self.crash_times[child], "reason": reason}
                yield {"path": child, "name": s.name, "kind": handle._cell.spec.factory.__name__,
                       "supervisor": False, "state": s.state.value,
                       "mailbox_depth": s.mailbox_depth, "mailbox_capacity": s.mailbox_size,
                       "handled": s.handled, "restarts": s.restarts, "crashes": s.restarts,
                       "last_crash": crash}

    def control(self, action: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if action == "pause":
            self.paused = True
        elif action == "resume":
            self.paused = False
        elif action == "step":
            self.budget = float(query["seconds"][0])
        else:
            raise ValueError(f"unknown control {action!r}")
        self.wake.set()
        return {"paused": self.paused, "sim_time": trio.current_time() - self.origin,
                "speed": None}

    def call(self, fn: Any, *args: Any) -> Any:
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token_trio)


def _handler(run: StubRun) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self, query: dict[str, list[str]]) -> bool:
            if run.token is None:
                return True
            given = self.headers.get("Authorization") == f"Bearer {run.token}"
            return given or query.get("token") == [run.token]

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path == "/":
                self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif url.path == "/status":
                self._send(200, json.dumps(run.call(run.status)).encode())
            elif url.path == "/events" and not self._authorised(query):
                self._send(401, b'{"error": "token required"}')
            elif url.path == "/events":
                self._events()
            else:
                self._send(404, b'{"error": "not found"}')

        def _events(self) -> None:
            listener: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
            run.listeners.append(listener)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                while not run.closing:
                    with contextlib.suppress(queue.Empty):
                        kind, data = listener.get(timeout=0.2)
                        self.wfile.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
                        self.wfile.flush()
            except OSError:
                pass
            finally:
                run.listeners.remove(listener)

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if not self._authorised(query):
                self._send(401, b'{"error": "token required"}')
                return
            action = url.path.removeprefix("/control/")
            try:
                self._send(200, json.dumps(run.call(run.control, action, query)).encode())
            except (ValueError, KeyError) as exc:
                self._send(400, json.dumps({"error": str(exc)}).encode())

    return Handler


@contextlib.contextmanager
def stub_server(
    names: list[str], token: str | None = None, reason: str = "fuel < 0"
) -> Iterator[tuple[StubRun, str]]:
    """Run the system and the stand-in server; yield the run and the server's base URL."""
    run = StubRun(names, token, reason)
    clock = trio.testing.MockClock(autojump_threshold=0)
    system = threading.Thread(target=lambda: trio.run(run.main, clock=clock), daemon=True)
    system.start()
    assert run.ready.wait(10), "the actor system did not start within 10 s"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(run))
    server.daemon_threads = True
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield run, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        run.closing = True
        server.shutdown()
        server.server_close()
        run.call(run.scope.cancel)
        system.join(10)
