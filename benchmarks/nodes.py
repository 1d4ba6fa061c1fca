"""Nodes: two actor systems (two processes) as one cluster over Redis Streams.

The benchmark starts its own ``redis-server`` on a free loopback port
(`spaceactors.transport.server.RedisServer`) and a peer node in a process of its own
(`benchmarks.nodes_peer`); this process is the other node. On a machine without
``redis-server`` it is skipped (with ``CI=true`` that is an error).

- One-way: this node sends N `Payload` messages (msgpack encoding of about 184 bytes) to the
  peer's ``sink``, which counts them, then asks it for the count (inside the timing): the count
  must have grown by exactly N (0 lost). Target >= 15,000 msgs/s.
- Ask latency: M sequential ``ask`` round trips to the peer's ``echo``, each timed; p50 and p99
  of the best run (fastest in total). Targets: p50 <= 5 ms, p99 <= 25 ms.
- Reliable one-way: the same N payloads by ``system.reliable.send`` to the ``sink``, timed
  until every one is acknowledged (`Reliable.delivered`); the sink must have counted each
  exactly once (target: 0 handled twice or never). No rate target: it is shown beside the
  plain one-way figure.
- A SIGKILLed node: a new peer (``ClusterSpec(heartbeat=0.2, ttl=1.0)``, as this node) whose
  ``slow`` actor handles a payload every 2 ms; this node sends it K payloads at once (within
  the credit window), waits until it has handled a quarter, and SIGKILLs it. This node declares
  it down and claims its unacknowledged entries (they become dead letters with reason
  NODE_DOWN here). The figure is the time from the kill until every payload is accounted for
  (handled by the peer before the kill, as it wrote on its stdout, or claimed here), the worst
  of the runs; target ttl + 1 s. Lost (neither handled nor claimed) must be 0; "twice" counts
  the payloads both handled and claimed (at-least-once: its last batch was never acknowledged).

- Sharded fleet: large-fleet with 20,000 ships (twice the shipped scenario's), run by the command
  on one node (``spaceactors run FILE``) and on two (``spaceactors run FILE --nodes 2``: a
  private redis-server, two local worker nodes, a share of 10 linked sectors each), each in a
  process of its own, for the scenario's 600 simulated seconds (``--quick``: 2,000 ships, 120
  s). The worker nodes load the scenario themselves, so the size is in a scenario file written
  to a temporary folder (`FLEET_FILE`: large-fleet's own build, with ``SHIPS`` set while it
  builds). The figure is ship-updates per wall second of the run as its summary reports it
  (``wall_seconds``: build, ticks and close; on two nodes the slower share's), for each, and
  their ratio; target 2 nodes / 1 node >= 1.5 (on this 2-core machine). Beside it: the
  command's own wall time from start to exit (it includes starting Python, and on two nodes the
  redis-server, the survey and the workers joining), the CPU seconds of the command and its
  children (`resource.getrusage`), and the ships of each share (`spaceactors.sim.shard.plan`
  on a survey of the file). Both runs must keep the invariants: no cargo lost
  (``cargo_imbalance`` under the expectation's tolerance) and every expectation held (target:
  0 failures), and as many ships docked as on one node (``ships_docked``, within 2%: the
  issue's "everyone docked" cannot hold in 600 s on one node or several, as 50 stations of 8
  berths with 60 s stays dock some 4,000 ships; the share of ships docked is the invariant).
  Each of the `Options.repeat` rounds runs both; the best rate of each is kept (no warm-up:
  every run is a fresh process).

CPU seconds (this process, the peer's, redis-server's) are shown beside the wall time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs
import trio

import spaceactors as sa
from benchmarks.harness import Options, clock, header, show, target
from spaceactors import sim
from spaceactors.sim.expectations import CARGO_TOLERANCE
from spaceactors.sim.shard import plan
from spaceactors.transport import ClusterSpec

NAME = "nodes"
SIZE = 50_000
"""Payloads sent one way."""
ASKS = 3_000
"""Sequential asks timed."""
KILLED = 1_000
"""Payloads sent to the node that is killed (within the default credit window, 1024)."""
BODY = 123
"""Bytes of the payload's body: its msgpack encoding is about 184 bytes."""
SLOW = 0.002
"""Seconds the killed node's actor takes per payload."""
SLOW_MAILBOX = 16
HEARTBEAT = 0.2
TTL = 1.0
"""The killed node's scenario: heartbeat and time to live (both nodes)."""
ROOT = Path(__file__).resolve().parent.parent
FLEET = 20_000
"""Ships in the sharded large-fleet run."""
NODES = 2
"""Worker nodes of the sharded run."""
QUICK_DURATION = 120.0
"""Simulated seconds of the sharded run in ``--quick`` (else the scenario's own, 600)."""
SPEEDUP = 1.5
"""Target: ship-updates/s on `NODES` nodes over one node's."""
DOCKED = 0.98
"""Target: the ships docked on `NODES` nodes over one node's (the same run, split)."""
FLEET_FILE = '''"""large-fleet with {ships:,} ships (written by benchmarks.nodes)."""

from spaceactors import sim
from spaceactors.scenarios import large_fleet

SHIPS = {ships}


@sim.scenario(
    "large-fleet-{ships}",
    duration=large_fleet.large_fleet.duration,
    step=large_fleet.large_fleet.step,
)
async def fleet(world: sim.World) -> None:
    """large-fleet's own build, with SHIPS ships."""
    saved = large_fleet.SHIPS
    large_fleet.SHIPS = SHIPS
    try:
        await large_fleet.large_fleet.build(world)
    finally:
        large_fleet.SHIPS = saved
'''

_names = itertools.count(1)


@attrs.frozen
class Payload:
    seq: int
    body: bytes


@attrs.frozen
class Read:
    """Asks the peer's ``sink`` how many payloads it counted."""


sa.default_codec.register(Payload, tag="benchmarks.nodes.Payload")
sa.default_codec.register(Read, tag="benchmarks.nodes.Read")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used (Linux: /proc; elsewhere NaN)."""
    if pid == os.getpid():
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


class Peer:
    """A node in a process of its own (`benchmarks.nodes_peer`): started and ready."""

    def __init__(self, url: str, heartbeat: float = 1.0, ttl: float = 3.0) -> None:
        self.node = f"peer-{os.getpid()}-{next(_names)}"
        self.handled: list[int] = []
        self._progress = threading.Condition()
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.nodes_peer", url, self.node, str(heartbeat),
             str(ttl)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(60):
            self.kill()
            raise RuntimeError(f"node {self.node} did not start (see its output above)")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(b"handled "):
                with self._progress:
                    self.handled.append(int(line.split()[1]))
                    self._progress.notify_all()
            elif line == b"ready\n":
                self._ready.set()

    def wait_handled(self, count: int, timeout: float) -> None:
        """Wait until its ``slow`` actor has handled `count` payloads."""
        with self._progress:
            if not self._progress.wait_for(lambda: len(self.handled) >= count, timeout):
                raise RuntimeError(f"node {self.node} handled {len(self.handled)} of {count}")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def kill(self) -> None:
        """SIGKILL it, and read every line it wrote."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)
        self._reader.join(timeout=15)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def close(self) -> None:
        """Let it leave the cluster (its stdin closes), or kill it after 15 s."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        self.kill()


@dataclass
class Cpu:
    """CPU seconds of this process, the peer's and redis-server's over a timed part."""

    pids: tuple[int, int, int]
    used: list[float] = field(default_factory=list)

    def __enter__(self) -> Cpu:
        self.used = [cpu_seconds(pid) for pid in self.pids]
        return self

    def __exit__(self, *exc: object) -> None:
        self.used = [
            cpu_seconds(pid) - used for pid, used in zip(self.pids, self.used, strict=True)
        ]

    def __str__(self) -> str:
        here, peer, redis = self.used
        return f"CPU s: this node {here:.2f}, peer {peer:.2f}, redis {redis:.2f}"


@asynccontextmanager
async def node(url: str, **options: float) -> AsyncIterator[sa.ActorSystem]:
    spec = ClusterSpec(url, **options)  # type: ignore[arg-type]
    async with sa.open_system(cluster=spec, node=f"bench-{os.getpid()}-{next(_names)}") as system:
        yield system


async def remote(system: sa.ActorSystem, name: str) -> sa.ActorRef:
    """The ref to `name` once this node knows of it (the directory is replicated)."""
    with trio.fail_after(30):
        while True:
            try:
                return system.lookup(name)
            except sa.ActorNotFound:
                await trio.sleep(0.005)


@dataclass
class Timed:
    seconds: float
    count: int
    cpu: Cpu
    latencies: list[float] = field(default_factory=list)


async def one_way(url: str, peer: Peer, redis: int, n: int) -> Timed:
    async with node(url) as system:
        sink = await remote(system, f"{peer.node}-sink")
        before: int = await sink.ask(Read(), timeout=30)
        body = b"x" * BODY
        messages = [Payload(i, body) for i in range(n)]
        send = sink.send
        with Cpu((os.getpid(), peer.process.pid, redis)) as cpu:
            start = clock()
            for message in messages:
                await send(message)
            after: int = await sink.ask(Read(), timeout=60)
            seconds = clock() - start
    return Timed(seconds, after - before, cpu)


async def reliable_one_way(url: str, peer: Peer, redis: int, n: int) -> Timed:
    """`n` payloads by reliable delivery, until every one is acknowledged."""
    async with node(url) as system:
        sink = await remote(system, f"{peer.node}-sink")
        before: int = await sink.ask(Read(), timeout=30)
        body = b"x" * BODY
        messages = [Payload(i, body) for i in range(n)]
        send, delivered = system.reliable.send, system.reliable.delivered
        with Cpu((os.getpid(), peer.process.pid, redis)) as cpu:
            start = clock()
            ids = [await send(sink, message, timeout=5.0) for message in messages]
            for message_id in ids:
                await delivered(message_id)
            seconds = clock() - start
        after: int = await sink.ask(Read(), timeout=60)
    return Timed(seconds, after - before, cpu)


async def asks(url: str, peer: Peer, redis: int, n: int) -> Timed:
    latencies: list[float] = []
    async with node(url) as system:
        echo = await remote(system, f"{peer.node}-echo")
        body = b"x" * BODY
        answered = 0
        await echo.ask(Payload(-1, body), timeout=30)
        with Cpu((os.getpid(), peer.process.pid, redis)) as cpu:
            start = clock()
            for i in range(n):
                sent = clock()
                answered += await echo.ask(Payload(i, body), timeout=30) == i
                latencies.append(clock() - sent)
            seconds = clock() - start
    return Timed(seconds, answered, cpu, latencies)


@dataclass
class Killed:
    handled: int  # by the killed node before it died
    claimed: int  # here, as NODE_DOWN dead letters
    twice: int
    lost: int
    down: float  # seconds from the kill to the node_down event here
    done: float  # seconds from the kill to the last payload accounted for (inf: never)


async def killed(url: str, victim: Peer, k: int) -> Killed:
    letters: list[sa.DeadLetter] = []
    async with node(url, heartbeat=HEARTBEAT, ttl=TTL) as system:
        system.dead_letters.listeners.append(letters.append)
        slow = await remote(system, f"{victim.node}-slow")
        body = b"x" * BODY
        for i in range(k):
            await slow.send(Payload(i, body))
        await trio.to_thread.run_sync(victim.wait_handled, k // 4, 60.0)
        killed_at = trio.current_time()
        victim.kill()
        handled = set(victim.handled)
        every = set(range(k))
        claimed: set[int] = set()
        done = float("inf")
        while trio.current_time() < killed_at + TTL + 10:
            claimed = {
                letter.message.seq
                for letter in letters
                if letter.reason is sa.DeadLetterReason.NODE_DOWN
                and isinstance(letter.message, Payload)
            }
            if handled | claimed >= every:
                times = [letter.time for letter in letters if letter.node == victim.node]
                done = max(times, default=killed_at) - killed_at
                break
            await trio.sleep(0.005)
        assert system.node is not None
        downs = [
            when
            for when, event, peer in system.node.events
            if event == "node_down" and peer == victim.node
        ]
        for _ in range(100):  # the take-over ends when the node is forgotten: leave no
            if victim.node not in system.node.members:  # half-done take-over behind (5 s)
                break
            await trio.sleep(HEARTBEAT / 4)
    return Killed(
        len(handled),
        len(claimed),
        len(handled & claimed),
        len(every - handled - claimed),
        downs[0] - killed_at if downs else float("inf"),
        done,
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def best(runs: list[Timed], n: int, what: str) -> Timed:
    """The fastest of `runs` (the first, a warm-up, left out), each checked to have done `n`."""
    for run in runs:
        if run.count != n:
            raise RuntimeError(f"{what}: {run.count} of {n} arrived")
    return min(runs[1:] or runs, key=lambda run: run.seconds)


@dataclass
class FleetRun:
    """One run of the sharded-fleet file by the command (`fleet_run`)."""

    nodes: int  # 1: ``spaceactors run FILE``; else with ``--nodes``
    summary: dict[str, Any]  # its --summary-json
    wall: float  # seconds: the command, from start to exit
    cpu: float  # CPU seconds of the command and its children (workers, redis-server)

    @property
    def updates(self) -> int:
        return int(self.summary["ship_updates"])

    @property
    def rate(self) -> float:
        """Ship-updates per wall second of the run (its summary's ``wall_seconds``)."""
        return self.updates / self.summary["wall_seconds"]

    @property
    def failures(self) -> list[str]:
        """The invariants it broke: cargo lost, an expectation that did not hold."""
        broken = [
            f"{e['description']}: {e['why']}" for e in self.summary["expectations"] if not e["held"]
        ]
        if not self.summary["cargo_imbalance"] < CARGO_TOLERANCE:
            broken.append(f"cargo imbalance {self.summary['cargo_imbalance']}")
        if not self.summary["expectations"]:
            broken.append("no expectation was checked")
        return broken

    def detail(self) -> str:
        s = self.summary
        held = sum(e["held"] for e in s["expectations"])
        return (
            f"{s['wall_seconds']:.1f} s run ({self.wall:.1f} s command, {self.cpu:.1f} CPU s); "
            f"docked {s['ships_docked']:,}/{s['ships']:,}, cargo imbalance "
            f"{s['cargo_imbalance']:g}, {held}/{len(s['expectations'])} expectations held"
        )


def fleet_file(folder: Path, ships: int) -> Path:
    """Write the large-fleet scenario with `ships` ships into `folder` (`FLEET_FILE`)."""
    path = folder / f"large_fleet_{ships}.py"
    path.write_text(FLEET_FILE.format(ships=ships))
    return path


def fleet_run(path: Path, nodes: int, duration: float | None) -> FleetRun:
    """Run the scenario file `path` by the command, on one node or on `nodes` (``--nodes``)."""
    out = path.with_name(f"{path.stem}-{nodes}-{next(_names)}.json")
    command = [sys.executable, "-m", "spaceactors", "run", str(path), "--progress", "never",
               "--summary-json", str(out)]  # fmt: skip
    if nodes > 1:
        command += ["--nodes", str(nodes)]
    if duration is not None:
        command += ["--duration", f"{duration:g}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = clock()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    wall = clock() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1) or not out.exists():  # (1: an expectation failed)
        raise RuntimeError(
            f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    summary = json.loads(out.read_text())
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return FleetRun(nodes, summary, wall, cpu)


def shares(path: Path, nodes: int, duration: float | None) -> list[int]:
    """The ships of each share of the file's scenario on `nodes` nodes, as the command deals
    them (a survey of the scenario, then `plan`)."""
    from spaceactors.cli.nodes import _survey

    chosen = sim.load(str(path))
    survey = trio.run(_survey, chosen, 0, chosen.run_length(duration))
    owner = plan(survey, nodes)
    load = [0] * nodes
    for sector, ships in survey.ships.items():
        load[owner[sector]] += ships
    return load


def sharded_fleet(ships: int, duration: float | None, repeat: int) -> list[bool]:
    """Large-fleet with `ships` ships on one node and on `NODES`: printed, and its targets."""
    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as folder:
        path = fleet_file(Path(folder), ships)
        dealt = shares(path, NODES, duration)
        runs: list[FleetRun] = []
        for _ in range(repeat):
            runs += [fleet_run(path, 1, duration), fleet_run(path, NODES, duration)]
    one = max((run for run in runs if run.nodes == 1), key=lambda run: run.rate)
    many = max((run for run in runs if run.nodes == NODES), key=lambda run: run.rate)
    for run in runs:
        if run.summary["ships"] != ships or run.updates != one.updates:
            raise RuntimeError(
                f"fleet on {run.nodes} node(s): {run.summary['ships']} ships and "
                f"{run.updates} ship-updates, expected {ships} and {one.updates}"
            )
    show("fleet, 1 node", f"{one.rate:,.0f}", "updates/s", one.detail())
    show(
        f"fleet, {NODES} nodes",
        f"{many.rate:,.0f}",
        "updates/s",
        f"{many.detail()}; shares of {' + '.join(f'{n:,}' for n in dealt)} ships",
    )
    ratio = many.rate / one.rate
    show(
        "fleet speed-up",
        f"{ratio:.2f}",
        "x",
        f"{one.updates:,} ship-updates; the commands end to end: {one.wall / many.wall:.2f}x "
        f"({one.wall:.1f} s vs {many.wall:.1f} s); CPU {many.cpu / one.cpu:.2f}x",
    )
    failures = [f"{run.nodes} node(s): {why}" for run in runs for why in run.failures]
    for why in failures:
        show("", "", "", f"broken: {why}")
    docked = many.summary["ships_docked"] / max(one.summary["ships_docked"], 1)
    show(
        "fleet docked",
        f"{many.summary['ships_docked']:,}",
        "ships",
        f"on {NODES} nodes; {one.summary['ships_docked']:,} on 1 (of {one.summary['ships']:,}: "
        "the berths dock a few thousand in 600 s, on one node or several)",
    )
    return [
        target(f"fleet {NODES}n / 1n", ratio, SPEEDUP, fmt=".2f"),
        target("fleet failures", len(failures), 0, at_most=True, fmt="d"),
        target(f"fleet docked {NODES}n / 1n", docked, DOCKED, fmt=".3f"),
    ]


def bench(options: Options) -> list[bool]:
    from spaceactors.transport.server import RedisNotInstalled, RedisServer

    n, m, k = options.size(SIZE), options.size(ASKS), max(8, options.size(KILLED))
    ships = options.size(FLEET)
    duration = None if options.scale == 1 else QUICK_DURATION
    header(
        NAME,
        f"2 nodes (processes) over a private redis-server: {n:,} one-way {BODY + 61}-byte "
        f"messages, {m:,} sequential asks, a SIGKILLed node with {k:,} sent to it; large-fleet "
        f"with {ships:,} ships on 1 node and on {NODES} (spaceactors run --nodes {NODES}), "
        + ("its own 600" if duration is None else f"{duration:g}")
        + " simulated s",
    )
    try:
        server = RedisServer()
    except RedisNotInstalled as exc:
        if os.environ.get("CI") == "true":
            raise
        show("skipped", "", "", str(exc))
        return []
    server.start()
    try:
        assert server.process is not None
        redis = server.process.pid
        peer = Peer(server.url)
        try:
            throughput = best(
                [trio.run(one_way, server.url, peer, redis, n) for _ in range(options.repeat + 1)],
                n,
                "one-way",
            )
            latency = best(
                [trio.run(asks, server.url, peer, redis, m) for _ in range(options.repeat)],
                m,
                "asks",
            )
            reliable = [
                trio.run(reliable_one_way, server.url, peer, redis, n)
                for _ in range(options.repeat)
            ]
        finally:
            peer.close()
        kills = []
        for _ in range(options.repeat):
            victim = Peer(server.url, HEARTBEAT, TTL)
            try:
                kills.append(trio.run(killed, server.url, victim, k))
            finally:
                victim.kill()
    finally:
        server.close()
    rate = throughput.count / throughput.seconds
    show("one-way", f"{rate:,.0f}", "msg/s", f"{throughput.seconds:.2f} s; {throughput.cpu}")
    fastest = min(reliable, key=lambda run: run.seconds)
    show(
        "reliable",
        f"{n / fastest.seconds:,.0f}",
        "msg/s",
        f"one way, each acknowledged: {fastest.seconds:.2f} s; {fastest.cpu}",
    )
    twice = sum(abs(run.count - n) for run in reliable)
    p50 = statistics.median(latency.latencies)
    p99 = percentile(latency.latencies, 0.99)
    show(
        "ask",
        f"{p50 * 1e3:.2f}",
        "ms p50",
        f"p99 {p99 * 1e3:.2f} ms, max {max(latency.latencies) * 1e3:.2f} ms, "
        f"{latency.count / latency.seconds:,.0f} asks/s; {latency.cpu}",
    )
    worst = max(kills, key=lambda run: run.done)
    lost = sum(run.lost for run in kills)
    show(
        "killed node",
        f"{worst.done:.2f}",
        "s",
        f"kill -> all handled, worst of {len(kills)}: declared down after {worst.down:.2f} s; "
        f"of {k:,} sent, {worst.handled} handled before the kill, {worst.claimed} claimed "
        f"({worst.twice} of them twice); lost {lost} in all runs",
    )
    results = [
        target("one-way msg/s", rate, 15_000, fmt=",.0f"),
        target("ask p50 (ms)", p50 * 1e3, 5.0, at_most=True, fmt=".2f"),
        target("ask p99 (ms)", p99 * 1e3, 25.0, at_most=True, fmt=".2f"),
        target("kill->all (s)", worst.done, TTL + 1.0, at_most=True, fmt=".2f"),
        target("lost at a kill", lost, 0, at_most=True, fmt="d"),
        target("reliable dup+lost", twice, 0, at_most=True, fmt="d"),
    ]
    return results + sharded_fleet(ships, duration, options.repeat)
