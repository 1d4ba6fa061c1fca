"""Observing: the 10k-ship fleet with the observation server on, against the same run with it
off, side by side in one run; and how fast ``/status`` answers while the fleet runs flat out.

Four kinds of run of `benchmarks.fleet` (large-fleet, 10,000 ships, virtual time), taken in
turn (off, on, polled, alternating) after one warm-up of the first three, `Options.repeat` of
each:

- off: no server;
- on: the server running, watched as the dashboard watches it: ``/status?limit=50`` and
  ``/metrics`` each once a second (real time) from a client in a process of its own
  (`benchmarks.watching`), on one kept-alive connection, as a browser or Prometheus watches;
- polled: ``/status?limit=50`` every 20 ms, each answer timed (wall clock, client side): the
  latency figures (p50, p99, max) are over every request of every polled run sent from the
  world's first tick on, while the scenario runs flat out; the requests sent during the build
  (spawning the 10,000 ships) are counted apart, their slowest shown;
- alternating: the server running, watched as "on" for `PHASE` real seconds, then left alone
  as long, in turn, for the whole run. The rate of simulated time while watched, against the
  rate while quiet, is observation's cost measured side by side in one run (summed over the
  runs): both halves share whatever else the machine does at that moment. (A quiet server
  costs nearly nothing: its thread sleeps in ``epoll`` until a request comes; it is shown as
  "server's CPU".)

Every run applies the command's memory policy (``spaceactors run --gc tuned``, its default:
`spaceactors.cli.gcpolicy.TunedGC`, through `benchmarks.fleet`), off and on alike, so what is
measured is what the command does. Rates are shown per wall second and per CPU second of the
process (every thread: the server's too), for the best run of each kind. On a shared machine
two runs of the same kind differ by up to 15%, more than observing costs, so the ratio of two
separate runs ("on / off, runs") is shown but is not the target; the cost is also measured
directly: the CPU the server's thread used while watched, on that thread's own clock, per wall
second of the run (median over the "on" runs).

Targets: on/off in one run >= 0.95 (observation costs at most 5%); ``/status`` p99 <= 100 ms.
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import spaceactors as sa
from benchmarks import fleet, watching
from benchmarks.harness import Options, header, show, target
from spaceactors.cli.switching import quick_switching

NAME = "observe"
STATUS = "/status?limit=50"
PHASE = 2.0
"""Real seconds of each phase of the "alternating" runs (watched, then quiet, in turn)."""
SAMPLE = 0.25
"""Real seconds between two readings of the server's CPU clock."""


class Watcher:
    """Requests `paths` in turn every `period` real seconds from a process of its own
    (`benchmarks.watching`), timing each; meanwhile a thread here reads the CPU clock of the
    server's thread every `SAMPLE` seconds."""

    def __init__(self, paths: tuple[str, ...], period: float, phase: float | None = None) -> None:
        self.paths = paths
        self.period = period
        self.phase = phase
        """If set: watch for `phase` real seconds, then stay quiet as long, in turn."""
        self.started = 0.0  # `time.perf_counter()` when it started: the phases count from it
        self.latencies: list[tuple[float, float]] = []
        """(when sent, seconds to the whole answer) of each ``/status`` request."""
        self.server_cpu: list[tuple[float, float]] = []
        """(when, CPU seconds the server's thread had used), every `SAMPLE` seconds."""
        self.failures = 0
        self.errors: list[str] = []
        """What each failed request raised or answered."""
        self._stop = threading.Event()
        self._client: subprocess.Popen[str] | None = None
        self._sampler: threading.Thread | None = None

    def start(self, url: str) -> None:
        self.started = time.perf_counter()
        self._client = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.watching",
                url,
                str(self.period),
                str(self.phase or 0),
                repr(self.started),
                *self.paths,
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def watching(self, when: float) -> bool | None:
        """Whether `when` falls in a watched phase (None: near a phase's end)."""
        return watching.watching(when, self.started, self.phase)

    def _sample(self) -> None:
        clock = None  # the CPU clock of the server's thread
        for thread in threading.enumerate():
            if thread.name == "spaceactors-observe" and thread.ident is not None:
                clock = time.pthread_getcpuclockid(thread.ident)
        while clock is not None and not self._stop.wait(SAMPLE):
            try:
                self.server_cpu.append((time.perf_counter(), time.clock_gettime(clock)))
            except OSError:
                return  # the server's thread has ended

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
        """Stop watching (the run is over) and read what the client saw."""
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=15)
        client = self._client
        if client is None:
            return
        client.terminate()
        out, _ = client.communicate(timeout=15)
        self.read(out)

    def read(self, out: str) -> None:
        """Take in the client's lines."""
        for text in out.splitlines():
            line = json.loads(text)
            if "error" in line or line["status"] != 200:
                self.failures += 1
                self.errors.append(f"{line['path']}: {line.get('error', line.get('status'))}")
            elif line["path"] == STATUS:
                self.latencies.append((line["sent"], line["seconds"]))


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


def phase_rates(run: fleet.FleetRun, watcher: Watcher) -> tuple[float, float, float, float]:
    """(simulated s, wall s) while watched, then while quiet, in `run`'s window: summed over
    the intervals between two progress calls that lie wholly inside one phase."""
    assert watcher.phase is not None
    phase, sums = watcher.phase, [0.0, 0.0, 0.0, 0.0]
    for (start, sim_start), (end, sim_end) in itertools.pairwise(run.marks):
        at_start, at_end = watcher.watching(start), watcher.watching(end)
        if at_start is None or at_start != at_end or end - start >= phase:
            continue  # across a boundary, or in a margin
        offset = 0 if at_start else 2
        sums[offset] += sim_end - sim_start
        sums[offset + 1] += end - start
    return sums[0], sums[1], sums[2], sums[3]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench(options: Options) -> list[bool]:
    n = options.size(fleet.SIZE)
    header(
        NAME,
        f"large-fleet with {n:,} ships, virtual time: observation server off, on (watched "
        "like the dashboard: /status and /metrics once a second), polled (/status every 20 ms), "
        f"alternating (watched {PHASE:g} s, quiet {PHASE:g} s)",
    )
    kinds: dict[str, Callable[[], Watcher] | None] = {
        "off": None,
        "on": lambda: Watcher((STATUS, "/metrics"), 0.5),
        "polled": lambda: Watcher((STATUS,), 0.02),
        "alternating": lambda: Watcher((STATUS, "/metrics"), 0.5, phase=PHASE),
    }
    phased = [0.0, 0.0, 0.0, 0.0]  # simulated and wall s, watched then quiet
    best: dict[str, fleet.FleetRun] = {}
    shares: list[float] = []  # the server's CPU per wall second, while watched ("on")
    latencies: list[float] = []  # sent from the first tick on
    building: list[float] = []  # sent before it
    failures = 0
    for attempt in range(options.repeat + 1):
        for kind, make in kinds.items():
            if not attempt and kind == "alternating":
                continue  # the others warmed everything up
            run, watcher = run_once(n, make)
            if not attempt:
                continue  # warm-up
            if watcher is not None and kind == "alternating":
                phased = [a + b for a, b in zip(phased, phase_rates(run, watcher), strict=True)]
                continue  # counted by phase, not as a run of its own
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
    separate = best["on"].rate / best["off"].rate
    cpu_ratio = best["on"].cpu_rate / best["off"].cpu_rate
    show(
        "on / off, runs",
        f"{separate:.3f}",
        "x",
        f"best run of each; per CPU second {cpu_ratio:.3f} (the machine's noise included)",
    )
    watched_sim, watched_wall, quiet_sim, quiet_wall = phased
    ratio = (watched_sim / watched_wall) / (quiet_sim / quiet_wall) if quiet_sim else 0.0
    show(
        "on / off, one run",
        f"{ratio:.3f}",
        "x",
        f"watched {PHASE:g} s, quiet {PHASE:g} s, in turn: {watched_wall:.1f} s watched "
        f"against {quiet_wall:.1f} s quiet over {options.repeat} runs",
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
        return [target("on/off, one run", ratio, 0.95, fmt=".3f"), False]
    p99 = percentile(latencies, 0.99)
    show(
        "/status running",
        f"{p99 * 1e3:,.1f}",
        "ms p99",
        f"p50 {statistics.median(latencies) * 1e3:.1f} ms, max {max(latencies) * 1e3:.1f} ms, "
        f"{len(latencies)} requests, {failures} failed",
    )
    return [
        target("on/off, one run", ratio, 0.95, fmt=".3f"),
        target("/status p99 (ms)", p99 * 1e3, 100.0, at_most=True, fmt=".1f"),
    ]
