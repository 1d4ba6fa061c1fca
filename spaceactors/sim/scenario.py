"""Scenarios: a decorated async function that builds a world, and the runner that runs it.

A scenario file defines one or more::

    from spaceactors import sim

    @sim.scenario(duration=1800, description="two stations and a hauler")
    async def trade_route(world: sim.World) -> None:
        await world.add_station("ceres", (0, 0, 0), sector="belt")
        ...
        world.at(600, lambda: world.emergency("hauler-1", sa.EmergencyType.ENGINE_FAILURE))
        world.expect("a trade happened", lambda s: s.trades > 0)

`run_scenario` opens a system, builds the world, starts its tick service under the supervision
tree, runs for the scenario's duration in simulation time, and returns a `Summary` that says
what happened and which expectations held.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio.testing

from spaceactors.checks import short_repr
from spaceactors.errors import SpaceActorsError
from spaceactors.faultplan import FaultPlan
from spaceactors.ref import ActorRef
from spaceactors.sim import arguments, expectations, persist
from spaceactors.sim.world import ScenarioError, World
from spaceactors.system import ActorSystem, open_system
from spaceactors.tasks import beside
from spaceactors.trace import Trace
from spaceactors.virtual import current_seed

if TYPE_CHECKING:
    from spaceactors.checkpoint.driver import Checkpointer
    from spaceactors.checkpoint.engine import Values
    from spaceactors.sim.shard import Placement

Build = Callable[[World], Awaitable[None]]

MAX_TICKS = 1_000_000_000
"""The most ticks a run may have (duration / step): a run beyond it would never end."""
MIN_STEP = 1e-6
"""The shortest tick step, in seconds (shorter ones vanish in the clock's rounding)."""
TOP_RESTARTERS = 5
"""How many of the actors that restarted most a `Summary` lists."""


class ScenarioNotFound(SpaceActorsError, LookupError):
    """No shipped scenario has that name, no file has that path, or the file defines none
    (or several, and none was chosen: the message lists their names)."""


class ScenarioBroken(SpaceActorsError, ValueError):
    """A scenario file could not be loaded (a syntax error, an import that failed, a call
    to ``sys.exit``...)."""


def _seconds(what: str, value: object, minimum: float = 0.0) -> float:
    """`value` as a finite number of seconds, > 0 and >= `minimum`, or a `ScenarioError`."""
    seconds = arguments.seconds(f"the {what}", value, zero=False)
    if seconds < minimum:
        raise ScenarioError(f"the {what} must be at least {minimum:g} s, got {short_repr(value)}")
    return seconds


def _timing(duration: object, step: float) -> float:
    """`duration` checked against `step`: the run's length in seconds."""
    length = _seconds("duration", duration)
    if length / step > MAX_TICKS:
        raise ScenarioError(
            f"a duration of {length:g} s is {length / step:.3g} ticks of {step:g} s; "
            f"a run has at most {MAX_TICKS:,} ticks (shorten the duration)"
        )
    if length < step:  # not one tick: nothing would move, and the run would pass unseen
        raise ScenarioError(
            f"a duration of {length:g} s is shorter than one tick of {step:g} s; "
            "a run has at least one tick (lengthen the duration)"
        )
    return length


@attrs.frozen
class Scenario:
    """A named way to build a world, with its default duration and tick step (seconds).

    Raises:
        ScenarioError: the duration or the step is not a finite, positive number of seconds,
            the step is under `MIN_STEP`, or the run would have more than `MAX_TICKS` ticks.
    """

    name: str
    build: Build
    description: str = ""
    duration: float = 600.0
    step: float = 1.0

    def __attrs_post_init__(self) -> None:
        arguments.name("scenario name", self.name)
        _timing(self.duration, _seconds("tick step", self.step, MIN_STEP))

    def run_length(self, duration: float | None = None) -> float:
        """The seconds a run of this scenario lasts: `duration`, else the scenario's own.

        Raises:
            ScenarioError: `duration` is not finite and positive, or too many ticks.
        """
        return _timing(self.duration if duration is None else duration, self.step)


def scenario(
    name: str | None = None,
    *,
    duration: float = 600.0,
    step: float = 1.0,
    description: str | None = None,
) -> Callable[[Build], Scenario]:
    """Turn ``async def build(world)`` into a `Scenario` (named after the function, with
    underscores as dashes, unless `name` is given; described by its docstring)."""

    def make(build: Build) -> Scenario:
        return Scenario(
            name or build.__name__.replace("_", "-"),
            build,
            description if description is not None else (build.__doc__ or "").strip(),
            duration,
            step,
        )

    return make


def _line_in(exc: BaseException, filename: str) -> int | None:
    """The line of `filename` that the error passed through last (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [frame for frame in frames if frame.filename == filename]
    return (mine or frames)[-1].lineno if frames else None


# --- running ----------------------------------------------------------------------------------


@attrs.frozen
class Progress:
    """Where a run is: shown by the command's progress bar."""

    sim_time: float
    duration: float
    messages: int
    actors: int
    restarts: int
    wall_seconds: float
    origin: float = 0.0
    """The simulated time this process's run started from: 0, or the checkpoint's on a
    resume (`wall_seconds` counts from there too)."""


@attrs.frozen
class Restarter:
    """A ship or station that restarted during a run: how often, and its last crash (the
    error as actor statuses show it, ``"ValueError('fuel < 0')"``; None if it never crashed,
    as for one restarted with a sibling)."""

    name: str
    restarts: int
    last_cause: str | None


@attrs.frozen
class Summary:
    """What a run did, and whether its expectations held.

    Counted once the system has closed, so that the summary and the run's trace count the
    same things: `dead_letters` are the trace's ``dead_letter`` events (those of the shutdown
    included: messages left in mailboxes), `restarts` its ``restart`` events of ships and
    stations, and `messages` plus `reliable_sends` its ``send`` events when no fault plan
    drops, duplicates or holds messages back.

    Attributes (times in seconds of simulation time):
        duration: how long the run lasted.
        dockings: berths granted; `ships_docked` how many ships docked at least once.
        messages: copies the router put in mailboxes (sends, each receiver of a broadcast or
            publish, answered asks); `messages_by_type` by class name.
        reliable_sends: transmissions by reliable delivery, retries included.
        unheard_publishes: publishes that reached no subscriber.
        max_answer_time: the longest from a distress call to a rescuer accepting it.
        max_rescue_time: the longest from a distress call to a rescuer alongside.
        unanswered: calls still waiting for a rescuer at the end; `longest_wait` the longest
            any of them had waited.
        dead_letters: every dead letter of the run; `dead_letters_by_reason` by reason.
        cargo_units: cargo (not fuel) in holds and stores when the run began.
        cargo_imbalance: how far cargo is from conserved at the end (0: none lost).
        unrun_events: when each event scheduled with `World.at` was due that never ran (it
            was due at or after the run's end).
        unmatched_faults: the fault rules that did nothing (`FaultInjector.unmatched`).
        expectations: ``(description, held, why)``; `why` says why one failed, or begins
            with ``"not checked: "`` when the run gave it nothing to check.
        top_restarters: the ships and stations that restarted most (at most
            `TOP_RESTARTERS`, most restarts first, then by name).
        trace_hash: the run's trace hash (`Trace.hash`), when it recorded a trace.

    A run stopped early (the ``stop`` event of `run_scenario`, a signal to the command)
    has `interrupted_at`, the simulated seconds it ran: its counts are those so far, and
    its expectations were not checked.
    """

    scenario: str
    seed: int
    duration: float
    ships: int
    stations: int
    messages: int
    messages_by_type: dict[str, int]
    dockings: int
    refusals: int
    evictions: int
    trades: int
    traded_units: float
    distress_calls: int
    rescues: int
    unanswered: int
    max_answer_time: float | None
    hazard_entries: int
    fuel_exhausted: int
    restarts: int
    dead_letters: int
    cargo_imbalance: float
    ship_updates: int
    wall_seconds: float
    ships_docked: int = 0
    reliable_sends: int = 0
    unheard_publishes: int = 0
    max_rescue_time: float | None = None
    longest_wait: float | None = None
    dead_letters_by_reason: dict[str, int] = attrs.Factory(dict)
    cargo_units: float = 0.0
    unrun_events: tuple[float, ...] = ()
    unmatched_faults: tuple[str, ...] = ()
    expectations: tuple[tuple[str, bool, str], ...] = ()
    interrupted_at: float | None = None
    top_restarters: tuple[Restarter, ...] = ()
    trace_hash: str | None = None

    @property
    def passed(self) -> bool:
        """The run went to its end and every expectation held."""
        return self.interrupted_at is None and all(ok for _, ok, _ in self.expectations)

    @property
    def not_checked(self) -> list[str]:
        """The expectations the run gave nothing to check, by description."""
        return [
            description
            for description, _, why in self.expectations
            if why.startswith(expectations.NOT_CHECKED)
        ]


async def run_scenario(
    chosen: Scenario,
    *,
    seed: int | None = None,
    duration: float | None = None,
    trace: Trace | str | None = None,
    faults: FaultPlan | None = None,
    progress: Callable[[Progress], None] | None = None,
    updates: int = 100,
    keep_world: Callable[[World], None] | None = None,
    stop: trio.Event | None = None,
    observe: str | bool | None = None,
    observe_token: str | None = None,
    checkpoints: Checkpointer | None = None,
    resume_from: Mapping[str, Any] | None = None,
    cluster: object = None,
    node: str | None = None,
    placement: Placement | None = None,
) -> Summary:
    """Run `chosen` in the current Trio run (use `spaceactors.run` for virtual time).

    `progress` is called `updates` times along the way; `keep_world` gets the world before it is
    built (to record trajectories, say), a resumed run's once it is rebuilt. Setting `stop` ends
    the run before its next tick (or cancels the build, if it is still building): the summary
    has `interrupted_at` and the counts so far. The run sets `stop` itself (and stops) when its
    trace fails to write. `observe` and `observe_token` serve the observation server while it
    runs (as `open_system`'s; the world's counters are on ``/metrics`` and ``/status``).
    `checkpoints` takes checkpoints as the run goes (virtual time), and one more at the last
    moment before the run's end; `resume_from` is one of them (from `spaceactors.checkpoint`):
    the run rebuilds it and carries on, in a run whose clock stands at its time, to `duration`
    seconds in all (extending a finished run, or ending one sooner; the checkpoint's own end if
    None) (docs/long-runs.md). `cluster` and `node` make the run's system a node of a
    cluster (as `open_system`'s); with `placement`, the node simulates only its share of the
    world (`spaceactors.sim.shard`: ``spaceactors run --nodes``).

    Raises:
        ScenarioError: `duration` is not finite and positive, or too long (`MAX_TICKS`).
        ScenarioBroken: the scenario's build function raised (or called ``sys.exit``).
        OSError: the trace file (a path given as `trace`) could not be written; it keeps
            the events before the failure.
    """
    if seed is None:
        seed = current_seed() or 0
    if resume_from is not None and duration is None:
        duration = _checkpoint_length(resume_from)
    length = chosen.run_length(duration)
    halt = trio.Event() if stop is None else stop
    wall = time.perf_counter()
    async with open_system(
        seed=seed,
        trace=trace,
        faults=faults,
        max_restarts=1000,
        within=60.0,
        observe=observe,
        observe_token=observe_token,
        cluster=cluster,
        node=node,
    ) as system:
        if system.trace is not None:
            system.trace.on_error = lambda _: halt.set()
        world = World(system, step=chosen.step, duration=length)
        world.placement = placement
        world.started = trio.current_time()
        if keep_world is not None and resume_from is None:
            keep_world(world)
        runner = persist.Runner()
        chunk = length / max(updates, 1)
        resumed = None
        if resume_from is None:
            world.build_from = persist.next_sequence(world)
            await _build(chosen, world, stop)
            world.declared_events = persist.next_sequence(world)
            if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
                # On a wall clock the build takes real time, which a fast run (--speed
                # 100000) counts in hours: simulated time starts when the world does, and the
                # world makes every tick from there, late if it must.
                world.started = world.first_tick = trio.current_time()
            runner.goods_before = _goods(world)
            runner.end = world.ends_at = world.started + length
            if not halt.is_set():
                await system.user.start_child(world.service())
            runner.report_at = min(runner.end, trio.current_time() + chunk)
        else:
            kept = None if keep_world is None else functools.partial(keep_world, world)
            resumed = await persist.resume(
                system, world, chosen.build, resume_from, runner, _values(), length, kept
            )
        goods_before, end = runner.goods_before, runner.end
        if checkpoints is not None:
            checkpoints.on_error = lambda _: halt.set()  # the run stops, and says why
            checkpoints.final_at = end  # the last moment before the end: one to extend
            checkpoints.origin = world.started
            checkpoints.attach(
                lambda: persist.capture(system, world, runner, _values()),
                ready=lambda: persist.ready(system),
            )
        # This process simulates from here: a resumed run's speed counts only what it runs.
        origin = 0.0 if resumed is None else trio.current_time() - world.started
        wall = time.perf_counter() if resumed is not None else wall
        while trio.current_time() < end and not halt.is_set():
            with trio.move_on_at(runner.report_at):
                await halt.wait()
            if progress is not None:
                progress(_progress(system, world, length, wall, origin))
            runner.report_at = min(end, trio.current_time() + chunk)
        # On a wall clock faster than the machine (--speed 100000) the world falls behind:
        # the run ends once it has made every tick, late, rather than skip them.
        while not world.finished.is_set() and not halt.is_set() and world.ends_at == end:
            with trio.move_on_after(max(chunk, world.step)):
                await world.finished.wait()
        interrupted = halt.is_set()
        if interrupted:  # stopped early: the counts so far, no verdict
            world.ends_at = trio.current_time()
        if checkpoints is not None:
            checkpoints.detach()
    if resumed is not None:
        resumed()
    if checkpoints is not None and checkpoints.error is not None:
        raise checkpoints.error
    # Counted once the system has closed: what its shutdown did (messages left in mailboxes
    # become dead letters) is on the trace, so it is in the summary too.
    summary = _summarize(chosen, system, world, seed, length, wall, goods_before)
    if interrupted:
        return attrs.evolve(summary, interrupted_at=world.ends_at - world.started)
    checked = _event_check(world) + tuple(
        expectations.check(expectation, summary) for expectation in world.expectations
    )
    return attrs.evolve(summary, expectations=checked)


def _checkpoint_length(doc: Mapping[str, Any]) -> float:
    """The length of the run a checkpoint holds (its end, from its start), in seconds."""
    try:
        return float(doc["runner"]["end"]) - float(doc["world"]["clock"]["started"])
    except (KeyError, TypeError, ValueError) as exc:
        from spaceactors.errors import CheckpointError

        raise CheckpointError(f"the checkpoint's runner state is damaged: {exc!r}") from None


def _values() -> Values:
    """The converter checkpoints save values with."""
    from spaceactors.checkpoint import values

    return values


async def _build(chosen: Scenario, world: World, stop: trio.Event | None) -> None:
    """Build the world; setting `stop` cancels a build still under way."""
    if stop is None:  # nothing can stop it: no watcher task (a seeded run stays the same)
        await _build_or_explain(chosen, world)
        return
    with trio.CancelScope() as building:
        await beside(lambda: _build_or_explain(chosen, world), _cancel_when_set, stop, building)


async def _cancel_when_set(
    event: trio.Event,
    scope: trio.CancelScope,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    await event.wait()
    scope.cancel()


async def _build_or_explain(chosen: Scenario, world: World) -> None:
    try:
        await chosen.build(world)
    except (Exception, SystemExit) as exc:  # the scenario's own code: say where, one line
        code = getattr(chosen.build, "__code__", None)
        script = code.co_filename if code is not None else "<scenario>"
        raise ScenarioBroken(
            f"scenario {chosen.name!r} failed while building its world at "
            f"{script}:{_line_in(exc, script)}: {type(exc).__name__}: {exc}"
        ) from exc


def _progress(
    system: ActorSystem, world: World, length: float, wall: float, origin: float
) -> Progress:
    stats = system.router.state
    return Progress(
        origin=origin,
        sim_time=trio.current_time() - world.started,
        duration=length,
        messages=sum(stats.delivered.values()),
        actors=len(system.registry),
        restarts=world.restarts(),  # (kept as they happen: no scan of the fleet)
        wall_seconds=time.perf_counter() - wall,
    )


def _restarts(world: World) -> int:
    """Restarts of every ship and station so far."""
    return sum(ref._cell.restarts for ref in _refs(world))


def _refs(world: World) -> list[ActorRef]:
    return [*world.ships.values(), *(site.ref for site in world.stations.values())]


def _top_restarters(world: World) -> tuple[Restarter, ...]:
    """The ships and stations that restarted most, most first (then by name)."""
    cells = sorted(
        (ref._cell for ref in _refs(world) if ref._cell.restarts),
        key=lambda cell: (-cell.restarts, cell.name),
    )
    return tuple(
        Restarter(cell.name, cell.restarts, cell.last_error) for cell in cells[:TOP_RESTARTERS]
    )


def _event_check(world: World) -> tuple[tuple[str, bool, str], ...]:
    """A failed expectation for scheduled events that raised (a scenario bug), if any."""
    if not world.event_errors:
        return ()
    return (("every scheduled event ran", False, "; ".join(world.event_errors)),)


def _goods(world: World) -> float:
    """Every unit of cargo (not fuel) in ships and stations, less what stations produced."""
    total = 0.0
    for record in world.records.values():
        total += sum(q for item, q in record.cargo.items() if item != "fuel")
        trade = record.pending_trade
        if trade is not None and record.station is not None:  # applied by the station only
            result = world.station_states[record.station].trades.get(trade.trade_id)
            if result is not None:
                total -= sum(item.quantity for item in result.sold)
                total += sum(item.quantity for item in result.bought)
    for state in world.station_states.values():
        market = state.market
        total += sum(c.stock for item, c in market.goods.items() if item != "fuel")
        total -= sum(q for item, q in market.net_production.items() if item != "fuel")
    return total


def _summarize(
    chosen: Scenario,
    system: ActorSystem,
    world: World,
    seed: int,
    length: float,
    wall: float,
    goods_before: float,
) -> Summary:
    metrics = world.metrics
    stats = system.router.stats()
    reliable = system.reliable.stats()
    end = world.started + length
    waits = [
        end - record.distress_since
        for name, record in world.records.items()
        if name in metrics.unanswered and record.distress_since is not None
    ]
    return Summary(
        scenario=chosen.name,
        seed=seed,
        duration=length,
        ships=len(world.ships),
        stations=len(world.stations),
        messages=stats.total_messages,
        messages_by_type=dict(sorted(stats.by_type.items())),
        dockings=metrics.dockings,
        refusals=metrics.refusals,
        evictions=metrics.evictions,
        trades=metrics.trades,
        traded_units=round(metrics.traded_units, 3),
        distress_calls=metrics.distress_calls,
        rescues=len(metrics.rescue_times),
        unanswered=len(metrics.unanswered),
        max_answer_time=max(metrics.answer_times, default=None),
        hazard_entries=metrics.hazard_entries,
        fuel_exhausted=metrics.fuel_exhausted,
        restarts=_restarts(world),
        dead_letters=system.dead_letters.total,
        cargo_imbalance=round(abs(_goods(world) - goods_before), 6),
        ship_updates=metrics.ship_updates,
        wall_seconds=time.perf_counter() - wall,
        ships_docked=len({ship for ship, _ in metrics.docked_at}),
        reliable_sends=reliable.sent + reliable.retried,
        unheard_publishes=stats.publishes_without_subscribers,
        max_rescue_time=max(metrics.rescue_times, default=None),
        longest_wait=max(waits, default=None),
        dead_letters_by_reason=dict(sorted(stats.dead_letters.items())),
        cargo_units=round(goods_before, 6),
        unrun_events=tuple(world.unrun_events()),
        unmatched_faults=_unmatched(system, end),
        top_restarters=_top_restarters(world),
        trace_hash=None if system.trace is None else system.trace.hash,
    )


def _unmatched(system: ActorSystem, end: float) -> tuple[str, ...]:
    if system.faults is None:
        return ()
    return tuple(str(rule) for rule in system.faults.unmatched(end))
