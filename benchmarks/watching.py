"""The client that watches a run for `benchmarks.observing`, in a process of its own (as a
browser or Prometheus is): it requests paths in turn every `period` real seconds on one
kept-alive connection, and prints one JSON line per request. A client thread inside the
benchmark's process would take the interpreter's lock for its own sends and reads, and so
charge the run for work that a real watcher does elsewhere.

    python -m benchmarks.watching URL PERIOD PHASE STARTED PATH...

PHASE 0: always watch; else watch for PHASE seconds, stay quiet as long, in turn, counted from
STARTED (`time.perf_counter()`, the system-wide monotonic clock on Linux, so both processes
agree). Each line: ``{"path", "sent", "seconds", "status"}`` or ``{"path", "sent", "error"}``.
It ends by itself when the server is gone or says its system is closing.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.parse

MARGIN = 0.2
"""Real seconds before a phase's end where no request starts, and whose progress is not
counted (a request's work must not spill into the next phase)."""


def watching(when: float, started: float, phase: float | None) -> bool | None:
    """Whether `when` falls in a watched phase (None: within `MARGIN` of a phase's end)."""
    if not phase:
        return True
    into, number = (when - started) % phase, (when - started) // phase
    if into > phase - MARGIN:
        return None
    return number % 2 == 0


class Client:
    """One kept-alive connection (a browser's dashboard and Prometheus keep theirs too)."""

    def __init__(self, url: str) -> None:
        self.connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=10)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET `path`, on a new connection once if the server closed the kept one."""
        for attempt in (1, 2):
            try:
                self.connection.request("GET", path)
                answer = self.connection.getresponse()
                return answer.status, answer.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def watch(url: str, period: float, phase: float, started: float, paths: list[str]) -> None:
    client, turn = Client(url), 0
    while True:
        time.sleep(period)
        if not watching(time.perf_counter(), started, phase):
            continue  # a quiet phase, or too near the end of a watched one
        path = paths[turn % len(paths)]
        turn += 1
        sent = time.perf_counter()
        line: dict[str, object] = {"path": path, "sent": sent}
        try:
            status, body = client.get(path)
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            return  # the run is over: its system closed the server
        except OSError as error:
            line["error"] = repr(error)
        else:
            if status == 503 and b"closing" in body:
                return  # the run is over: its system is closing (the server says so)
            line.update(seconds=time.perf_counter() - sent, status=status)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    url, period, phase, started, *paths = sys.argv[1:]
    watch(url, float(period), float(phase), float(started), paths)  # until the run is over
