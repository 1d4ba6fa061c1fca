"""Observing: the 10k-ship fleet with the observation server on, against the same run with it
off, side by side in one run; and how fast ``/status`` answers while the fleet runs flat out.

Five kinds of run of `benchmarks.fleet` (large-fleet, 10,000 ships, virtual time), taken in
turn (off, on, polled, alternating, alternating polled) after one warm-up of the first three,
`Options.repeat` of each:

- off: no server;
- on: the server running, watched as the dashboard watches it: ``/status?limit=50`` and
  ``/metrics`` each once a second (real time) from a client in a process of its own
  (`benchmarks.watching`), on one kept-alive connection, as a browser or Prometheus watches;
- polled: ``/status?limit=50`` every 20 ms, each answer timed (wall clock, client side): the
  latency figures (p50, p99, max) are over every request of every polled run sent from the
  world's first tick on, while the scenario runs flat out; the requests sent during the build
  (spawning the 10,000 ships) are counted apart, their slowest shown;
- alternating (`ALTERNATING` times as many runs as the others): the server running, watched
  as "on" for `PHASE` real seconds, then left alone as long, in turn, for the whole run. The
  rate of simulated time while watched, against the rate while quiet, is observation's cost
  measured side by side in one run (summed over the runs): both halves share whatever else
  the machine does at that moment. (A quiet server costs nearly nothing: its thread sleeps in
  ``epoll`` until a request comes; it is shown as "server's CPU".)
- alternating, polled: as "alternating", but ``/status?limit=50`` and ``/metrics`` in turn
  every 20 ms while watched (about 30 answers a second, 15 times the dashboard's). The time
  the run lost while watched, over the answers sent meanwhile, is the cost of one answer; at
  the dashboard's two answers a second, that is "on / off, per answer".

The target is "on / off, one run", as the issue sets it, over `ALTERNATING` times as many
runs as the others: at the dashboard's pace observing costs the run a few per cent at most,
while on this shared machine the speed of one run moves by 10% from one second to the next
with what else runs on it (one run's own figure ranges from 0.92 to 1.09). "Per answer" is
shown beside it as a check with a stronger signal: thirty answers a second cost the run 15
times as much, well above the noise; scaled to the dashboard's two, it assumes an answer
costs the same however often they come.

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

import bisect
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
DURATION = 2400.0
"""Simulated seconds of each run: four times large-fleet's own 600 s, so that a run (about ten
real seconds since the simulation core works on arrays) holds a few watched and quiet phases
in turn, and enough ``/status`` answers for a p99."""
SAMPLE = 0.25
"""Real seconds between two readings of the server's CPU clock."""
ALTERNATING = 3
""""alternating" runs per `Options.repeat`: its figure is a few per cent under 10% noise."""
DASHBOARD_ANSWERS = 2.0
"""Answers a second the dashboard asks for (``/status`` and ``/metrics`` once each)."""


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
        self.answers: list[float] = []
        """When each answered request (any path) was sent."""
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
            else:
                self.answers.append(line["sent"])
                if line["path"] == STATUS:
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
                    duration=DURATION,
                    observe=watcher is not None,
                    watch=None if watcher is None else watcher.start,
                ),
                seed=fleet.SEED,
            )
    finally:
        if watcher is not None:
            watcher.stop()
    return run, watcher


def phase_rates(run: fleet.FleetRun, watcher: Watcher) -> list[float]:
    """[simulated s, wall s] while watched, then while quiet, in `run`'s window, then the
    answers sent within the watched ones: summed over the intervals between two progress
    calls that lie wholly inside one phase."""
    assert watcher.phase is not None
    phase, sums = watcher.phase, [0.0, 0.0, 0.0, 0.0, 0.0]
    answers = sorted(watcher.answers)
    for (start, sim_start), (end, sim_end) in itertools.pairwise(run.marks):
        at_start, at_end = watcher.watching(start), watcher.watching(end)
        if at_start is None or at_start != at_end or end - start >= phase:
            continue  # across a boundary, or in a margin
        offset = 0 if at_start else 2
        sums[offset] += sim_end - sim_start
        sums[offset + 1] += end - start
        if at_start:
            sums[4] += bisect.bisect_left(answers, end) - bisect.bisect_left(answers, start)
    return sums


def slowdown(sums: list[float]) -> float:
    """The speed while watched over the speed while quiet (`phase_rates` summed)."""
    watched_sim, watched_wall, quiet_sim, quiet_wall, _ = sums
    return (watched_sim / watched_wall) / (quiet_sim / quiet_wall) if quiet_sim else 0.0


def cost_per_answer(sums: list[float]) -> float:
    """Seconds of the run's progress each answer took (`phase_rates` summed): the wall time
    watched less the time the same progress took while quiet, per answer sent meanwhile."""
    watched_sim, watched_wall, quiet_sim, quiet_wall, answers = sums
    if not quiet_sim or not answers:
        return 0.0
    return (watched_wall - watched_sim * quiet_wall / quiet_sim) / answers


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench(options: Options) -> list[bool]:
    n = options.size(fleet.SIZE)
    header(
        NAME,
        f"large-fleet with {n:,} ships, {DURATION:g} simulated s, virtual time: observation server "
        "off, on (watched "
        "like the dashboard: /status and /metrics once a second), polled (/status every 20 ms), "
        f"alternating (watched {PHASE:g} s, quiet {PHASE:g} s)",
    )
    kinds: dict[str, Callable[[], Watcher] | None] = {
        "off": None,
        "on": lambda: Watcher((STATUS, "/metrics"), 0.5),
        "polled": lambda: Watcher((STATUS,), 0.02),
        "alternating": lambda: Watcher((STATUS, "/metrics"), 0.5, phase=PHASE),
        "alternating, polled": lambda: Watcher((STATUS, "/metrics"), 0.02, phase=PHASE),
    }
    phased = {kind: [0.0] * 5 for kind in kinds if kind.startswith("alternating")}
    best: dict[str, fleet.FleetRun] = {}
    shares: list[float] = []  # the server's CPU per wall second, while watched ("on")
    latencies: list[float] = []  # sent from the first tick on
    building: list[float] = []  # sent before it
    failures = 0
    each: list[float] = []  # the slowdown of each "alternating" run
    for attempt in range(options.repeat + 1):
        for kind, make in kinds.items():
            if not attempt and kind in phased:
                continue  # the others warmed everything up
            for _ in range(ALTERNATING if attempt and kind == "alternating" else 1):
                run, watcher = run_once(n, make)
                if attempt and watcher is not None and kind in phased:
                    sums = phase_rates(run, watcher)
                    phased[kind] = [a + b for a, b in zip(phased[kind], sums, strict=True)]
                    if kind == "alternating":
                        each.append(slowdown(sums))
            if not attempt or kind in phased:
                continue  # a warm-up, or counted by phase, not as a run of its own
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
    direct = phased["alternating"]
    ratio = slowdown(direct)
    show(
        "on / off, one run",
        f"{ratio:.3f}",
        "x",
        f"watched {PHASE:g} s, quiet {PHASE:g} s, in turn: {direct[1]:.1f} s watched "
        f"against {direct[3]:.1f} s quiet over {len(each)} runs (each from "
        f"{min(each, default=0):.3f} to {max(each, default=0):.3f})",
    )
    polled_sums = phased["alternating, polled"]
    per_answer = cost_per_answer(polled_sums)
    estimate = 1.0 - DASHBOARD_ANSWERS * per_answer
    show(
        "cost per answer",
        f"{per_answer * 1e3:.2f}",
        "ms of the run",
        f"polled every 20 ms and quiet, {PHASE:g} s each, in turn: {int(polled_sums[4]):,} "
        f"answers (/status and /metrics in turn), {slowdown(polled_sums):.3f}x while polled",
    )
    show(
        "on / off, per answer",
        f"{estimate:.3f}",
        "x",
        f"the dashboard's {DASHBOARD_ANSWERS:g} answers a second at that cost each",
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
