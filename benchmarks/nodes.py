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
- A SIGKILLed node: a new peer (``ClusterSpec(heartbeat=0.2, ttl=1.0)``, as this node) whose
  ``slow`` actor handles a payload every 2 ms; this node sends it K payloads at once (within
  the credit window), waits until it has handled a quarter, and SIGKILLs it. This node declares
  it down and claims its unacknowledged entries (they become dead letters with reason
  NODE_DOWN here). The figure is the time from the kill until every payload is accounted for
  (handled by the peer before the kill, as it wrote on its stdout, or claimed here), the worst
  of the runs; target ttl + 1 s. Lost (neither handled nor claimed) must be 0; "twice" counts
  the payloads both handled and claimed (at-least-once: its last batch was never acknowledged).

CPU seconds (this process, the peer's, redis-server's) are shown beside the wall time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import attrs
import trio

import spaceactors as sa
from benchmarks.harness import Options, clock, header, show, target
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


def bench(options: Options) -> list[bool]:
    from spaceactors.transport.server import RedisNotInstalled, RedisServer

    n, m, k = options.size(SIZE), options.size(ASKS), max(8, options.size(KILLED))
    header(
        NAME,
        f"2 nodes (processes) over a private redis-server: {n:,} one-way {BODY + 61}-byte "
        f"messages, {m:,} sequential asks, a SIGKILLed node with {k:,} sent to it",
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
    return [
        target("one-way msg/s", rate, 15_000, fmt=",.0f"),
        target("ask p50 (ms)", p50 * 1e3, 5.0, at_most=True, fmt=".2f"),
        target("ask p99 (ms)", p99 * 1e3, 25.0, at_most=True, fmt=".2f"),
        target("kill->all (s)", worst.done, TTL + 1.0, at_most=True, fmt=".2f"),
        target("lost at a kill", lost, 0, at_most=True, fmt="d"),
    ]
