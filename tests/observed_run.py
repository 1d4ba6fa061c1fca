"""A real run to watch: an actor system in virtual time, observed by the real server.

The system runs in a thread of its own (its own `trio.run`, on `MockClock` virtual time, as
`spaceactors run` does), opened with ``open_system(observe="127.0.0.1:0")``: the dashboard
tests read it and steer it over HTTP, as a browser would, while it runs.
"""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import trio
import trio.testing

import spaceactors as sa

CRASH_EVERY = 20  # ticks (simulated seconds) between two crashes of the crashing station
RETIRE_AT = 3000  # the tick at which the actor to retire stops for good


class Tick:
    pass


class Ship(sa.Actor):
    async def handle(self, message: object) -> None:
        return None


class Station(sa.Actor):
    """Crashes on every message, with `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def handle(self, message: object) -> None:
        raise ValueError(self.reason)


class ObservedRun:
    def __init__(
        self, names: list[str], station: str, reason: str, token: str | None, retire: str | None
    ) -> None:
        self.names, self.station, self.reason, self.token = names, station, reason, token
        self.retire = retire
        self.url = ""
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope = trio.CancelScope()

    async def main(self) -> None:
        async with sa.open_system(
            seed=1, observe="127.0.0.1:0", observe_token=self.token
        ) as system:
            fleet = await system.spawn_supervisor("fleet", max_restarts=1_000_000, within=1.0)
            ships = []
            for name in self.names:
                await fleet.start_child(sa.ChildSpec(name, Ship))
                ships.append(fleet.child(name))
            await fleet.start_child(sa.ChildSpec(self.station, Station, args=(self.reason,)))
            station = fleet.child(self.station)
            if self.retire is not None:
                await fleet.start_child(sa.ChildSpec(self.retire, Ship))
            assert system.observe_url is not None
            self.url = system.observe_url.rstrip("/") + "/"
            self._token = trio.lowlevel.current_trio_token()
            self.ready.set()
            with self._scope:
                for tick in range(1, 10**9):
                    # Real-time pacing keeps the run light on a shared machine (a thread wait
                    # is no deadline: virtual time does not move meanwhile).
                    await trio.to_thread.run_sync(time.sleep, 0.002)
                    await trio.sleep(1.0)
                    for ship in ships:
                        await ship.send(Tick())
                    if tick == RETIRE_AT and self.retire is not None:
                        await fleet.stop_child(self.retire)
                    if tick % CRASH_EVERY == 0:
                        await station.send(Tick())
                system.root.request_shutdown()

    def run(self) -> None:
        try:
            trio.run(self.main, clock=trio.testing.MockClock(autojump_threshold=0))
        except BaseException as exc:
            self.failed = exc
            self.ready.set()

    def stop(self) -> None:
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)


@contextlib.contextmanager
def observed_run(
    names: list[str] = ["ship:1", "ship:2"],  # noqa: B006 (read only)
    reason: str = "fuel < 0",
    station: str = "station:ceres",
    token: str | None = None,
    retire: str | None = None,
) -> Iterator[str]:
    """Run the system (ships, and a `station` that crashes on every message with `reason`)
    and yield the observation server's base URL; stop it all on exit (within 30 s). An actor
    named `retire` stops for good at tick `RETIRE_AT`."""
    run = ObservedRun(names, station, reason, token, retire)
    thread = threading.Thread(target=run.run, name="observed run", daemon=True)
    thread.start()
    try:
        assert run.ready.wait(30), "the observed run did not start within 30 s"
        if run.failed is not None:
            raise run.failed
        yield run.url
    finally:
        run.stop()
        thread.join(30)
        assert not thread.is_alive(), "the observed run did not stop within 30 s"


@contextlib.contextmanager
def observed_command(*arguments: str) -> Iterator[str]:
    """Run ``spaceactors run ARGUMENTS --observe 127.0.0.1:0`` in a process of its own and yield
    the address it prints; end it on exit (SIGTERM, then SIGKILL after 10 s)."""
    command = [sys.executable, "-m", "spaceactors", "run", *arguments, "--observe", "127.0.0.1:0"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stderr or ()], daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if match := re.search(r"observing at (http://\S+)", line):
                break
        yield match[1].rstrip("/") + "/"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(10)
        if process.stderr is not None:
            process.stderr.close()
