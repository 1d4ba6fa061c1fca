"""Observing: the 10k-ship fleet with the observation server on, against the same run with it
off, side by side in one run; and how fast ``/status`` answers while the fleet runs flat out.

Three kinds of run of `benchmarks.fleet` (large-fleet, 10,000 ships, virtual time), taken in
turn (off, on, polled) after one warm-up of each, best ship-updates rate of `Options.repeat`:

- off: no server;
- on: the server running, watched as the dashboard watches it: ``/status?limit=50`` and
  ``/metrics`` each once a second (real time) from a client thread;
- polled: ``/status?limit=50`` every 20 ms, each answer timed (wall clock, client side): the
  latency figures (p50, p99, max) are over every request of every polled run sent from the
  world's first tick on, while the scenario runs flat out; the requests sent during the build
  (spawning the 10,000 ships) are counted apart, their slowest shown.

Every run applies the command's memory policy (``spaceactors run --gc tuned``, its default:
`spaceactors.cli.gcpolicy.TunedGC`, through `benchmarks.fleet`), off and on alike, so what is
measured is what the command does. Rates are shown per wall second and per CPU second of the
process (every thread: the server's too). On a shared machine two runs of the same kind differ
by up to 15%, more than observing costs; so the cost is also measured directly: the CPU the
server's thread used while watched, on that thread's own clock, per wall second of the run
(median over the "on" runs).

Targets: on/off >= 0.95 (observation costs at most 5%); ``/status`` p99 <= 100 ms.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import http.client
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import spaceactors as sa
from benchmarks import fleet
from benchmarks.harness import Options, header, show, target
from spaceactors.cli.switching import quick_switching

NAME = "observe"
STATUS = "/status?limit=50"


class Watcher:
    """A client thread that requests `paths` in turn every `period` real seconds, timing each."""

    def __init__(self, paths: tuple[str, ...], period: float) -> None:
        self.paths = paths
        self.period = period
        self.latencies: list[tuple[float, float]] = []
        """(when sent, seconds to the whole answer) of each ``/status`` request."""
        self.server_cpu: list[tuple[float, float]] = []
        """(when, CPU seconds the server's thread had used) after each request."""
        self.failures = 0
        self.errors: list[str] = []
        """What each failed request raised."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, url: str) -> None:
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        turn = 0
        server_clock = None  # the CPU clock of the server's thread, when it is found
        for thread in threading.enumerate():
            if thread.name == "spaceactors-observe" and thread.ident is not None:
                server_clock = time.pthread_getcpuclockid(thread.ident)
        while not self._stop.wait(self.period):
            path = self.paths[turn % len(self.paths)]
            turn += 1
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(url + path, timeout=10) as answer:
                    answer.read()
            except urllib.error.HTTPError as error:
                if error.code == 503 and b"closing" in error.read():
                    return  # the run is over: its system is closing (the server says so)
                self.failures += 1
                self.errors.append(repr(error))
                continue
            except urllib.error.URLError as error:
                if isinstance(error.reason, ConnectionRefusedError | ConnectionResetError):
                    return  # the run is over: its system closed the server
                self.failures += 1
                self.errors.append(repr(error))
                continue
            except (ConnectionResetError, http.client.RemoteDisconnected):
                return  # the server closed as the run ended, this request in flight
            except OSError as error:
                self.failures += 1
                self.errors.append(repr(error))
                continue
            done = time.perf_counter()
            if path == STATUS:
                self.latencies.append((started, done - started))
            if server_clock is not None:
                with contextlib.suppress(OSError):  # the server's thread has just ended
                    self.server_cpu.append((done, time.clock_gettime(server_clock)))

    def server_share(self, since: float) -> float | None:
        """The CPU the server's thread used from `since` on, per wall second (1.0: a whole
        core), measured on its own clock: what observing took from the run, whatever else
        the machine was doing."""
        samples = [sample for sample in self.server_cpu if sample[0] >= since]
        if len(samples) < 2:
            return None
        (start, used), (end, total) = samples[0], samples[-1]
        return (total - used) / (end - start)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)


def run_once(n: int, make: Callable[[], Watcher] | None) -> tuple[fleet.FleetRun, Watcher | None]:
    """One fleet run in virtual time: without the server (`make` None), or watched."""
    gc.collect()
    watcher = None if make is None else make()
    try:
        with quick_switching(watcher is not None):  # as the command does when it observes
            run = sa.run(
                functools.partial(
                    fleet.fleet,
                    n,
                    observe=watcher is not None,
                    watch=None if watcher is None else watcher.start,
                ),
                seed=fleet.SEED,
            )
    finally:
        if watcher is not None:
            watcher.stop()
    return run, watcher


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench(options: Options) -> list[bool]:
    n = options.size(fleet.SIZE)
    header(
        NAME,
        f"large-fleet with {n:,} ships, virtual time: observation server off, on (watched "
        "like the dashboard: /status and /metrics once a second), polled (/status every 20 ms)",
    )
    kinds: dict[str, Callable[[], Watcher] | None] = {
        "off": None,
        "on": lambda: Watcher((STATUS, "/metrics"), 0.5),
        "polled": lambda: Watcher((STATUS,), 0.02),
    }
    best: dict[str, fleet.FleetRun] = {}
    shares: list[float] = []  # the server's CPU per wall second, while watched ("on")
    latencies: list[float] = []  # sent from the first tick on
    building: list[float] = []  # sent before it
    failures = 0
    for attempt in range(options.repeat + 1):
        for kind, make in kinds.items():
            run, watcher = run_once(n, make)
            if not attempt:
                continue  # warm-up
            if kind not in best or run.rate > best[kind].rate:
                best[kind] = run
            if watcher is not None and kind == "polled":
                for sent, seconds in watcher.latencies:
                    (latencies if sent >= run.first_tick else building).append(seconds)
            if watcher is not None:
                failures += watcher.failures
            if watcher is not None and kind == "on":
                share = watcher.server_share(run.first_tick)
                if share is not None:
                    shares.append(share)
    for kind, run in best.items():
        show(
            f"ship-updates, {kind}",
            f"{run.rate:,.0f}",
            "updates/s",
            f"{run.window:.2f} s run; {run.cpu_rate:,.0f}/CPU s ({run.cpu:.2f} CPU s)",
        )
    ratio = best["on"].rate / best["off"].rate
    cpu_ratio = best["on"].cpu_rate / best["off"].cpu_rate
    show(
        "on / off",
        f"{ratio:.3f}",
        "x",
        f"the server watched once a second; per CPU second {cpu_ratio:.3f}",
    )
    if shares:
        show(
            "server's CPU, on",
            f"{statistics.median(shares):.1%}",
            "of a core",
            f"median of {len(shares)} runs (from {min(shares):.1%} to {max(shares):.1%}): "
            "its own thread's clock, from the first tick, the cost apart from the machine's noise",
        )
    polled = best["polled"]
    show(
        "polled / off",
        f"{polled.rate / best['off'].rate:.3f}",
        "x",
        f"per CPU second {polled.cpu_rate / best['off'].cpu_rate:.3f}",
    )
    if building:
        show(
            "/status in the build",
            f"{max(building) * 1e3:,.1f}",
            "ms max",
            f"p50 {statistics.median(building) * 1e3:.1f} ms, {len(building)} requests "
            "sent while the ships were spawned",
        )
    if not latencies:
        show("/status", "no answer", "", f"{failures} failed requests")
        return [target("on/off", ratio, 0.95, fmt=".3f"), False]
    p99 = percentile(latencies, 0.99)
    show(
        "/status running",
        f"{p99 * 1e3:,.1f}",
        "ms p99",
        f"p50 {statistics.median(latencies) * 1e3:.1f} ms, max {max(latencies) * 1e3:.1f} ms, "
        f"{len(latencies)} requests, {failures} failed",
    )
    return [
        target("on/off", ratio, 0.95, fmt=".3f"),
        target("/status p99 (ms)", p99 * 1e3, 100.0, at_most=True, fmt=".1f"),
    ]
