"""What the checkpoint tests share: a stand-in value converter, and the two moments a test run
arms at quiescent points (take a checkpoint; take over a checkpoint's task order)."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio
import trio.testing

import spaceactors as sa
from spaceactors.checkpoint import engine, quiescence


class DeepCopies:
    """A stand-in converter: deep copies (the state never leaves the process)."""

    def save_actor(self, actor: object, *, path: str, shared: Mapping[str, object]) -> object:
        state = {k: v for k, v in vars(actor).items() if k != "ctx"}
        return copy.deepcopy(state, {id(v): v for v in shared.values()})

    def restore_actor(self, cls: type, data: Any, *, shared: Any, refs: Any) -> Any:
        actor = cls.__new__(cls)
        vars(actor).update(copy.deepcopy(data, {id(v): v for v in shared.values()}))
        return actor

    def save_value(self, value: object, *, where: str, shared: Mapping[str, object]) -> object:
        return copy.deepcopy(value, {id(v): v for v in shared.values()})

    def restore_value(self, data: object, *, shared: Any, refs: Any) -> Any:
        return copy.deepcopy(data, {id(v): v for v in shared.values()})


VALUES = DeepCopies()


def rows(system: sa.ActorSystem) -> list[tuple[Any, ...]]:
    """The system's trace events as comparable rows."""
    assert system.trace is not None
    return [
        (e.time, e.kind.value, e.actor, e.peer, e.message_type, e.detail)
        for e in system.trace.events
    ]


def take_at(
    system: sa.ActorSystem,
    at: float,
    out: list[dict[str, Any]],
    wanted: Callable[[sa.ActorSystem], bool] = lambda _: True,
) -> None:
    """Take one checkpoint (into `out`) at the first quiescent point at or after `at` where
    the system can be checkpointed and `wanted` holds: the engine's state, the task order, the
    scheduler's generator, and how many events the trace held."""
    watch = quiescence.Quiescence()

    def take() -> bool:
        if trio.current_time() < at or engine.busy(system) is not None or not wanted(system):
            return False
        out.append(
            {
                "engine": engine.capture(system, engine.Saving(VALUES, {})),
                "tasks": quiescence.task_order(),
                "scheduler": quiescence.scheduler_state(),
                "events": 0 if system.trace is None else system.trace.count,
            }
        )
        trio.lowlevel.remove_instrument(watch)
        return True

    watch.wait(take)
    trio.lowlevel.add_instrument(watch)


async def resume_from_point(system: sa.ActorSystem, point: Mapping[str, Any]) -> Callable[[], None]:
    """Rebuild `point` (from `take_at`) in `system`, freshly opened, and arm the run to take
    over its task order at its first quiescent point. Returns the check to call once the run
    is over (`quiescence.take_over`)."""
    await engine.restore(system, point["engine"], engine.Restoring(VALUES, {}))
    return quiescence.take_over(point["tasks"], point["scheduler"])


async def begin(
    system: sa.ActorSystem,
    build: Callable[[sa.ActorSystem], Awaitable[object]],
    resume: Mapping[str, Any] | None,
    at: float | None,
    out: list[dict[str, Any]] | None,
) -> Callable[[], None]:
    """Start a test's run in `system`: `build` it, or rebuild the point `resume` in it; and
    with `at` and `out`, take a checkpoint into `out` from `at` on (`take_at`). Returns the
    check to call once the run is over (a fresh run has nothing to check)."""
    check = nothing_to_check
    if resume is None:
        await build(system)
    else:
        check = await resume_from_point(system, resume)
    if at is not None and out is not None:
        take_at(system, at, out)
    return check


async def traced_run(
    build: Callable[[sa.ActorSystem], Awaitable[object]],
    end: float,
    resume: Mapping[str, Any] | None = None,
    at: float | None = None,
    out: list[dict[str, Any]] | None = None,
) -> list[tuple[Any, ...]]:
    """A test's traced run (seed 3) to `end` (virtual seconds): `build` it, or rebuild the
    point `resume`; with `at` and `out`, checkpoint into `out` from `at` on (`begin`). Its
    trace's rows, once the resume (if any) is checked."""
    async with sa.open_system(seed=3, trace=True) as system:
        check = await begin(system, build, resume, at, out)
        await trio.sleep_until(end)
        events = rows(system)
    check()
    return events


def nothing_to_check() -> None:
    """The check of a run that resumed nothing."""


def resumed_clock(point: Mapping[str, Any]) -> trio.testing.MockClock:
    """A virtual clock standing at `point`'s time, for the resumed run."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(point["engine"]["time"])
    return clock
