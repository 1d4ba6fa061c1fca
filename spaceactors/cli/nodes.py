"""``spaceactors node`` (a worker node of a cluster) and ``spaceactors run --nodes N`` (a
scenario sharded across N worker nodes): docs/nodes.md.

A worker node is an actor system joined to the cluster, with one actor, ``worker.NAME``, that
runs the share of a sharded run it is asked to (`RunShard`), each in a Trio run of its own
(virtual time, in a thread), itself a node of the cluster for the run. The command that runs a
scenario on N nodes surveys the scenario (`spaceactors.sim.shard.Survey`), deals its sectors
to the nodes (`spaceactors.sim.shard.plan`), asks every worker for its share and prints the
merged summary. Without ``--redis`` it starts a private redis-server; it starts the workers it
does not find in the cluster itself, and stops them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import attrs
import cattrs
import outcome
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.cli.arguments import NODES
from spaceactors.cli.gcpolicy import TunedGC
from spaceactors.cli.report import render_summary, say, write_output, write_summary_json
from spaceactors.cli.run import EXIT_FAILED, BadInput, ended
from spaceactors.cli.signals import Signals, exit_code, signal_name
from spaceactors.sim.expectations import check
from spaceactors.sim.shard import (
    BARRIER_TIMEOUT,
    CheckShard,
    Placement,
    RunShard,
    Survey,
    merge,
    plan,
    restarted,
    verdicts,
    whole_world,
)

if TYPE_CHECKING:
    from spaceactors.transport import Node
    from spaceactors.transport.server import RedisServer

logger = logging.getLogger("spaceactors.cli")

REDIS_VARIABLE = "SPACEACTORS_REDIS"
PARENT_VARIABLE = "SPACEACTORS_PARENT"
"""Set by ``run --nodes`` for the workers it starts: its process id (they leave without it)."""
"""The environment variable ``spaceactors node`` reads its ``--redis`` URL from by default."""
WORKER = "worker."
"""A worker node ``NAME`` runs the actor ``worker.NAME``."""
STARTUP = 30.0
"""Real seconds to wait for the workers this command starts to join the cluster."""

_summaries = cattrs.Converter()
_T = TypeVar("_T")


def add_node_command(commands: Any) -> None:
    """Add ``node`` to the command's subparsers."""
    node = commands.add_parser(
        "node", help="run a worker node of a cluster (on Redis or Valkey Streams)"
    )
    node.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get(REDIS_VARIABLE),
        help=_REDIS_HELP + f" (default: ${REDIS_VARIABLE}, which keeps a password out of ps)",
    )
    node.add_argument("--name", help="this node's name (default: HOSTNAME-PID)")
    node.add_argument("--prefix", default="spaceactors", help="the cluster's key prefix")


_REDIS_HELP = (
    "the cluster's Redis or Valkey: redis://[user:password@]HOST:PORT[/DB] (rediss:// for TLS)"
)


def add_run_options(run: argparse.ArgumentParser) -> None:
    """Add ``--nodes`` and ``--redis`` to ``run``."""
    run.add_argument(
        "--nodes",
        type=NODES,
        metavar="N",
        help="shard the run by sector across N worker nodes (docs/nodes.md)",
    )
    run.add_argument(
        "--redis",
        metavar="URL",
        help="with --nodes: the cluster's Redis (default: a private redis-server, and N "
        "local workers)",
    )
    run.add_argument(
        "--prefix", default="spaceactors", help="with --nodes: the cluster's key prefix on Redis"
    )


# --- the worker ----------------------------------------------------------------------------


class ShardRun:
    """One share of a sharded run, in a Trio run of its own (call `run` in a thread)."""

    def __init__(self, job: RunShard, url: str, prefix: str) -> None:
        self.job = job
        self.url = url
        self.prefix = prefix
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self.world: sim.World | None = None
        self.placement: Placement | None = None

    def run(self) -> sim.Summary:
        from spaceactors.transport import ClusterSpec

        job = self.job
        chosen = sim.load(job.scenario)
        memory = TunedGC() if job.gc == "tuned" else None

        def keep(world: sim.World) -> None:
            self.world = world
            if memory is not None:  # the command's memory policy (--gc), as on one node:
                memory.at_first_tick(world)  # else full collections take seconds of a share

        async def share(stop: trio.Event) -> sim.Summary:
            self._token, self._stop = trio.lowlevel.current_trio_token(), stop
            self.placement = Placement(job.index, job.sectors, job.nodes, job.run, stop.set)
            return await sim.run_scenario(
                chosen,
                seed=job.seed,
                duration=job.duration,
                cluster=ClusterSpec(self.url, prefix=self.prefix, lockstep=True),
                node=job.nodes[job.index],
                placement=self.placement,
                stop=stop,
                keep_world=keep,
            )

        try:
            return sa.run(lambda: share(trio.Event()), seed=job.seed)
        finally:
            if memory is not None:
                memory.restore()

    def check(
        self, summary: sim.Summary, restarts: dict[str, tuple[int, str | None]]
    ) -> list[list[object]]:
        """Its world's expectations, checked on the whole run (`whole_world`)."""
        assert self.world is not None
        whole_world(self.world, restarts)
        return [list(check(e, summary)) for e in self.world.expectations]

    def stop(self) -> None:
        """End the share before its next tick (from any thread, a Trio run's included)."""
        if self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._stop.set)


class Shares:
    """The share a worker node runs now, if any: what its command halts when it is stopped."""

    def __init__(self) -> None:
        self.running: ShardRun | None = None
        self.done = trio.Event()

    async def halt(self, node: Node) -> None:
        """Halt the run of the share under way (every share stops at the same tick), and
        wait until this one has ended (its summary so far goes to the command)."""
        share = self.running
        if share is None:
            return
        with trio.move_on_after(5.0):
            await node.raise_halt(share.job.run)
        with trio.move_on_after(BARRIER_TIMEOUT + 5.0):  # (a share still building: its
            await self.done.wait()  # first barrier, then it halts)


async def _coordinator_gone(node: Node, coordinator: str) -> None:
    """Return once the node `coordinator` is down or has left (never, for "")."""
    if not coordinator:
        await trio.sleep_forever()
    while coordinator not in node.down:
        await node.changed()


class Worker(sa.Actor):
    """``worker.NAME``: runs the shares of sharded runs it is asked to, one at a time; each
    answer is the share's summary (as plain data)."""

    def __init__(self, url: str, prefix: str, shares: Shares | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.shares = Shares() if shares is None else shares
        self.last: ShardRun | None = None  # its expectations are checked next

    async def _halt_without(self, coordinator: str, share: ShardRun) -> None:
        """The command that asked for `share` is gone (killed): nobody waits for the run,
        so it stops, every share at once."""
        node = self.ctx.system.node
        assert node is not None
        await _coordinator_gone(node, coordinator)
        logger.warning("the command of run %s is gone: the run stops", share.job.run)
        with trio.move_on_after(5.0):
            await node.raise_halt(share.job.run)
        share.stop()

    async def handle(self, message: object) -> object:
        if isinstance(message, CheckShard):
            if self.last is None or self.last.job.run != message.run:
                raise ValueError(f"this worker did not run a share of {message.run!r}")
            share, self.last = self.last, None
            summary = _summaries.structure(message.summary, sim.Summary)
            return share.check(summary, message.restarts)
        if not isinstance(message, RunShard):
            raise TypeError(f"a worker runs RunShard, not {type(message).__name__}")
        share = self.last = self.shares.running = ShardRun(message, self.url, self.prefix)
        self.shares.done = trio.Event()
        try:
            async with trio.open_nursery() as watching:
                watching.start_soon(self._halt_without, message.coordinator, share)
                summary = await trio.to_thread.run_sync(share.run, abandon_on_cancel=True)
                watching.cancel_scope.cancel()
        except trio.Cancelled:  # hard-cancelled: the others stop at their next tick
            share.stop()
            node = self.ctx.system.node
            if node is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                    await node.raise_halt(message.run)
            raise
        finally:
            self.shares.running = None
            self.shares.done.set()
        assert share.world is not None
        assert share.placement is not None
        return {
            "summary": _summaries.unstructure(summary),
            "restarts": restarted(share.world),
            "failure": share.placement.failure,
        }


def node_command(args: argparse.Namespace, err: TextIO, signals: Signals) -> int:
    """Run ``spaceactors node`` until a signal stops it."""
    from spaceactors.transport.redis_url import redacted
    from spaceactors.transport.spec import check_node_name, default_node_name

    with _one_line():
        name = default_node_name() if args.name is None else check_node_name(args.name)
    if not args.redis:
        raise BadInput(f"give the cluster's Redis: --redis URL, or ${REDIS_VARIABLE}")
    spec = _spec(args.redis, args.prefix)

    async def serve(stop: trio.Event) -> None:
        shares = Shares()
        async with sa.open_system(cluster=spec, node=name) as system:
            await system.spawn(Worker, args.redis, args.prefix, shares, name=WORKER + name)
            say(err, f"spaceactors: node {name!r} joined {redacted(args.redis)}")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_set_when_parent_dies, stop)
                await stop.wait()
                nursery.cancel_scope.cancel()
            assert system.node is not None
            await shares.halt(system.node)  # a run under way stops at one tick, with a summary

    signals.phase = f"running node {name!r}"
    with signals.for_trio(), _one_line():
        sa.run(signals.session, serve, virtual=False)
    if not signals.seen:
        return 0  # (its parent, the command that started it, has gone)
    signals.quiet()
    signals.reported = True
    names = " then ".join(signal_name(signum) for signum in signals.seen)
    say(err, f"spaceactors: node {name!r} left the cluster (interrupted by {names})")
    return exit_code(signals.seen[-1])


async def _set_when_parent_dies(stop: trio.Event) -> None:
    """For a worker that ``run --nodes`` started (`PARENT_VARIABLE`): set `stop` once that
    command's process is gone (killed: nothing stopped its workers), checked every second."""
    parent = os.environ.get(PARENT_VARIABLE)
    if not parent:
        return
    while str(os.getppid()) == parent:  # noqa: ASYNC110 - no event tells of a parent's death
        await trio.sleep(1.0)
    logger.warning("the command that started this worker node has gone: it leaves")
    stop.set()


async def _until(stop: trio.Event, body: Callable[[], Awaitable[_T]]) -> _T:
    """`body()`, cancelled when `stop` is set (a signal): then `KeyboardInterrupt`. What
    it raises is raised as it is (not in an exception group)."""
    result: list[outcome.Outcome[_T]] = []
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            await stop.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        try:
            result.append(outcome.Value(await body()))
        except Exception as exc:  # (a Cancelled goes on: the nursery's scope catches it)
            while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # (one task's error, out of its nursery)
            result.append(outcome.Error(exc))
        nursery.cancel_scope.cancel()
    if not result:
        raise KeyboardInterrupt
    return result[0].unwrap()


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """What the cluster refuses, as the command's one line (exit code 2)."""
    from spaceactors.transport import BrokerUnavailable, NodeNameTaken

    try:
        yield
    except (sa.InvalidSpec, BrokerUnavailable, NodeNameTaken, TimeoutError) as exc:
        raise BadInput(str(exc)) from None
    except (sa.ActorCrashed, sa.ActorUnavailable, sa.ActorNotFound) as exc:  # a worker's
        raise BadInput(f"a worker node failed: {exc}") from None


def _spec(url: str, prefix: str) -> Any:
    from spaceactors.transport import ClusterSpec

    with _one_line():
        return ClusterSpec(url, prefix=prefix)


# --- the command that runs a scenario on N nodes --------------------------------------------


def run_on_nodes(args: argparse.Namespace, out: TextIO, err: TextIO, signals: Signals) -> int:
    """``spaceactors run SCENARIO --nodes N``: returns the exit code."""
    for option, given in (
        ("--clock wall", args.clock == "wall"),
        ("--trace", args.trace),
        ("--faults", args.faults),
        ("--state", getattr(args, "state", None)),
        ("--observe", args.observe),
    ):
        if given:
            raise BadInput(f"--nodes does not take {option} (yet): run it on one node")
    from spaceactors.transport.server import RedisNotInstalled, RedisServer

    try:
        chosen = sim.load(args.scenario)
        length = chosen.run_length(args.duration)
    except (sim.ScenarioNotFound, sim.ScenarioBroken, sim.ScenarioError) as exc:
        raise BadInput(str(exc)) from None
    if args.redis is None and args.nodes > local_workers():  # (all of them local)
        raise BadInput(
            f"--nodes {args.nodes} would start {args.nodes} local worker processes, and at most "
            f"{local_workers()} are started on this machine ({os.cpu_count() or 1} cores): "
            "give --redis with workers started by spaceactors node (docs/nodes.md), or fewer"
        )
    with contextlib.ExitStack() as stack:
        url = args.redis
        server = None
        if url is None:
            try:
                server = RedisServer()
            except RedisNotInstalled as exc:
                raise BadInput(str(exc)) from None
            stack.callback(server.close)
            signals.phase = "starting a private redis-server"
            server.start()
            url = server.url
        spec = _spec(url, args.prefix)
        signals.phase = f"running {chosen.name} on {_nodes(args.nodes)}"
        with signals.for_trio(), _one_line():
            summary = sa.run(
                signals.session,
                lambda stop: _server_lives(
                    server, lambda: _coordinate(chosen, args, spec, url, length, err, stack, stop)
                ),
                virtual=False,
            )
    signals.phase = "printing the summary"
    write_output(out, render_summary(summary))
    if args.summary_json:
        write_summary_json(args.summary_json, summary)
    if summary.interrupted_at is not None and not signals.seen:
        say(
            err,
            f"spaceactors: the run was halted at t={summary.interrupted_at:,.1f} s of "
            f"{summary.duration:,.0f} s by one of its worker nodes (stopped by a signal); "
            "its expectations were not checked",
        )
        return EXIT_FAILED
    return ended(summary, signals, err)


async def _server_lives(server: RedisServer | None, body: Callable[[], Awaitable[_T]]) -> _T:
    """`body()`; but if the private redis-server (`server`) exits meanwhile, `BadInput` at
    once (nodes would wait for it forever: nobody starts it again)."""
    if server is None or server.process is None:
        return await body()
    process = server.process
    result: list[_T] = []

    async def watch() -> None:
        while process.poll() is None:  # noqa: ASYNC110 - no event tells of a process's end
            await trio.sleep(0.5)
        raise BadInput(
            f"the run's private redis-server exited (code {process.returncode}) while the run "
            "went on; nothing of it is kept: run it again"
        )

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            result.append(await body())
            nursery.cancel_scope.cancel()
    except* BadInput as group:
        raise _first(group) from None
    return result[0]


def _first(group: BaseExceptionGroup[BadInput]) -> BadInput:
    """The first `BadInput` in `group` (nurseries nest their groups)."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    assert isinstance(found, BadInput)
    return found


async def _coordinate(
    chosen: sim.Scenario,
    args: argparse.Namespace,
    spec: Any,
    url: str,
    length: float,
    err: TextIO,
    stack: contextlib.ExitStack,
    stop: trio.Event,
) -> sim.Summary:
    """The run: until its shares run, `stop` (a signal) cancels it (`KeyboardInterrupt`);
    once they do, it halts every share at the same tick, and the summary so far comes back."""
    survey = await _until(stop, lambda: _survey(chosen, args.seed, length))
    sectors = plan(survey, args.nodes)
    run = secrets.token_hex(4)
    async with sa.open_system(cluster=spec, node=f"run-{os.getpid()}-{run}") as system:
        workers = await _until(stop, lambda: _workers(system, args.nodes, url, args.prefix, stack))
        from spaceactors.transport.redis_url import redacted

        say(
            err,
            f"spaceactors: running {chosen.name} on {_nodes(len(workers))} "
            f"({', '.join(workers)}) via {redacted(url)}",
        )
        nodes = tuple(f"{worker}.{run}" for worker in workers)
        coordinator = system.node.name if system.node is not None else ""
        parts: list[sim.Summary | None] = [None] * len(workers)
        restarts: dict[str, tuple[int, str | None]] = {}

        async def share(index: int, worker: str) -> None:
            job = RunShard(
                run, args.scenario, args.seed, length, index, sectors, nodes, args.gc, coordinator
            )
            try:
                answer = await system.ask(WORKER + worker, job)
            except (sa.ActorUnavailable, sa.ActorNotFound, sa.ActorCrashed) as exc:
                raise BadInput(f"the run stopped: worker node {worker!r}: {exc}") from None
            if answer["failure"] is not None:
                raise BadInput(f"the run stopped on node {worker!r} {answer['failure']}")
            parts[index] = _summaries.structure(answer["summary"], sim.Summary)
            restarts.update({name: (n, error) for name, (n, error) in answer["restarts"].items()})

        async def halt_on_stop(node: Node) -> None:
            await stop.wait()
            await node.raise_halt(run)  # every share stops before the next tick they meet at

        assert system.node is not None
        async with trio.open_nursery() as watching:
            watching.start_soon(halt_on_stop, system.node)
            async with trio.open_nursery() as nursery:
                for index, worker in enumerate(workers):
                    nursery.start_soon(share, index, worker)
            watching.cancel_scope.cancel()
        done = [part for part in parts if part is not None]
        merged = merge(done)
        if merged.interrupted_at is not None:
            return merged
        whole = _summaries.unstructure(merged)
        checks: list[list[tuple[str, bool, str]]] = [[] for _ in workers]

        async def check_share(index: int, worker: str) -> None:
            answer = await system.ask(WORKER + worker, CheckShard(run, whole, restarts))
            checks[index] = [(str(d), bool(h), str(w)) for d, h, w in answer]

        async with trio.open_nursery() as nursery:
            for index, worker in enumerate(workers):
                nursery.start_soon(check_share, index, worker)
    failed_events = tuple(
        {e for part in done for e in part.expectations if not e[1] and "event" in e[0]}
    )
    return attrs.evolve(merged, expectations=failed_events + verdicts(checks))


async def _survey(chosen: sim.Scenario, seed: int, length: float) -> Survey:
    """Build the scenario once, simulating nothing, to learn its sectors and ships."""
    survey = Survey()
    async with sa.open_system(seed=seed) as system:
        world = sim.World(system, step=chosen.step, duration=length)
        world.placement = survey
        await chosen.build(world)
    return survey


async def _workers(
    system: sa.ActorSystem, count: int, url: str, prefix: str, stack: contextlib.ExitStack
) -> list[str]:
    """`count` worker nodes of the cluster: those there, then local ones started for it."""
    node = system.node
    assert node is not None
    await trio.sleep(0.2)
    found: list[str] = []
    for name, holder in sorted(node.directory.items()):  # live workers no other run holds
        live = name.startswith(WORKER) and node.members.get(holder.node)
        if len(found) < count and live and await _lease(system, name[len(WORKER) :]):
            found.append(name[len(WORKER) :])
    wanted = count - len(found)
    most = local_workers()
    if wanted > most:
        raise BadInput(
            f"--nodes {count} would start {wanted} local worker processes here, and at most "
            f"{most} are started on this machine ({os.cpu_count() or 1} cores): start more "
            "with spaceactors node (docs/nodes.md), or ask for fewer"
        )
    started: list[str] = []
    for i in range(wanted):
        name = f"local-{os.getpid()}-{i}"
        process = subprocess.Popen(  # noqa: ASYNC220 - fork and exec only; stopped by the stack
            [sys.executable, "-m", "spaceactors", "node", "--name", name, "--prefix", prefix],
            # (the URL in its environment: no password on a command line)
            env={**os.environ, REDIS_VARIABLE: url, PARENT_VARIABLE: str(os.getpid())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C is the command's to handle (it halts the run)
        )  # fmt: skip
        stack.callback(_stop_worker, process)
        started.append(name)
    with trio.move_on_after(STARTUP):
        while not all(WORKER + name in node.directory for name in started):  # noqa: ASYNC110
            await trio.sleep(0.05)  # (the directory changes as the node reads its inbox)
    missing = [name for name in started if WORKER + name not in node.directory]
    if missing:
        raise BadInput(f"the worker nodes {missing} did not join within {STARTUP:g} s")
    for name in started:
        await _lease(system, name)
    return (found + started)[:count]


class Lease(sa.Actor):
    """``lease.WORKER``: held (cluster-wide, by its name) by the run that uses the worker, for
    as long as it runs; another run at the same time takes other workers."""


async def _lease(system: sa.ActorSystem, worker: str) -> bool:
    """Take `worker` for this run: False if another run holds it."""
    try:
        await system.spawn(Lease, name=f"lease.{worker}", restart=sa.Restart.TEMPORARY)
    except sa.NameTaken:
        return False
    return True


def _nodes(count: int) -> str:
    return f"{count} node{'' if count == 1 else 's'}"


def local_workers() -> int:
    """The most worker processes ``run --nodes`` starts on this machine: 4 per core."""
    return 4 * (os.cpu_count() or 1)


def _stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
