"""Quiescent points of a Trio run, and the scheduler state a resumed run must take over.

A checkpoint of a seeded virtual-time run is taken where taking it cannot change the run: no
task is runnable and the next deadline lies in the future, so the clock is about to jump. Trio
calls its instruments' ``before_io_wait`` at the top of every pass of its run loop; at such a
point, `Quiescence` calls what waits for one, synchronously, outside every task. Nothing is
woken, no virtual time passes and no random draw is made.

What the run's future owes to Trio itself is its task order. A seeded scheduler
(`spaceactors.seeded_scheduler`) sorts each batch of tasks that became runnable together by
their creation counter and shuffles it with a module-level ``random.Random``. So a resumed run
continues exactly when it holds the same tasks, blocked at the same places, in the same relative
creation order, with the same generator state: `task_order` and `scheduler_state` read those,
`restore_task_order` and `restore_scheduler_state` put them back (at the resumed run's first
quiescent point, once its tasks are rebuilt). Both reach into Trio internals that its
deterministic-scheduling hook also relies on; they fail loudly if a Trio release changes them.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import trio
from trio._core import _run as trio_run_internals

from spaceactors.errors import CheckpointError

TaskKey = tuple[str, ...]
"""Where a task sits in the run's task tree: one part per level, each
``"<nursery index>:<task name>#<ordinal among siblings of that name>"``."""

OUTSIDE = frozenset({"0:observe#0"})
"""Tasks that take no part in the run, with all below them: the observation service's
(`spaceactors.observe`), idle unless the run is steered. A checkpoint's task order leaves them
out, and a resumed run's are not matched against it, so a run resumes with or without an
observer, whichever it was taken with."""


class Quiescence(trio.abc.Instrument):
    """A Trio instrument that calls its waiters at quiescent points.

    A waiter is a callable taking no argument and returning True when it is done (it is then
    dropped) or False to be called again at the next quiescent point. It runs synchronously in
    Trio's run loop, outside every task: it must not block or call into Trio's task APIs.
    """

    def __init__(self) -> None:
        self._waiters: list[Callable[[], bool]] = []

    def wait(self, waiter: Callable[[], bool]) -> None:
        """Call `waiter` at each quiescent point from the next one on, until it returns True."""
        self._waiters.append(waiter)

    @property
    def waiting(self) -> bool:
        return bool(self._waiters)

    def before_io_wait(self, timeout: float) -> None:
        if not self._waiters:
            return
        stats = trio.lowlevel.current_statistics()
        if stats.tasks_runnable or not stats.seconds_to_next_deadline > 0:
            return
        waiters, self._waiters = self._waiters, []
        kept = [waiter for waiter in waiters if not waiter()]
        self._waiters[:0] = kept  # (a waiter may have added others meanwhile)


def _walk() -> Iterator[tuple[TaskKey, Any]]:
    """Every task of the run with its key, parents before children (none `OUTSIDE`)."""
    root = trio.lowlevel.current_root_task()
    if root is None:  # pragma: no cover - only called inside a run
        raise RuntimeError("not inside a Trio run")
    todo: list[tuple[TaskKey, Any]] = [((f"0:{root.name}#0",), root)]
    while todo:  # a loop, not recursion: any depth of nesting
        key, task = todo.pop()
        yield key, task
        for index, nursery in enumerate(task.child_nurseries):
            seen: collections.Counter[str] = collections.Counter()
            for child in sorted(nursery.child_tasks, key=_counter):
                ordinal = seen[child.name]
                seen[child.name] += 1
                part = f"{index}:{child.name}#{ordinal}"
                if part not in OUTSIDE:
                    todo.append(((*key, part), child))


def _counter(task: Any) -> int:
    return int(task._counter)


def task_order() -> list[list[Any]]:
    """The relative creation order of every task of the run: ``[[key parts...], rank]`` pairs
    (plain data), rank 0 for the oldest."""
    tasks = sorted(_walk(), key=lambda pair: _counter(pair[1]))
    return [[list(key), rank] for rank, (key, _) in enumerate(tasks)]


def restore_task_order(saved: Sequence[Sequence[Any]]) -> tuple[list[TaskKey], list[TaskKey]]:
    """Give the run's tasks the relative creation order `saved` (from `task_order`).

    The tasks named in `saved` get counters below any task created from now on, in the saved
    order; a task of the run that `saved` does not name keeps its own counter (above them).
    Returns ``(missing, extra)``: the keys of `saved` that no task of the run has, and the
    tasks of the run that `saved` does not name (both empty when the rebuilt run matches).

    Raises:
        ValueError: `saved` is not a list of ``[[str, ...], int]`` pairs.
    """
    ranks: dict[TaskKey, int] = {}
    for pair in saved:
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not isinstance(pair[0], list | tuple)
            or not all(isinstance(part, str) for part in pair[0])
            or type(pair[1]) is not int
        ):
            raise ValueError(f"a task order entry must be [[str, ...], int], got {pair!r:.80}")
        if OUTSIDE.isdisjoint(pair[0]):  # (taken before OUTSIDE was left out: ignored)
            ranks[tuple(pair[0])] = pair[1]
    found = dict(_walk())
    base = -len(ranks) - 1  # every restored task sorts before those made from now on
    for key, rank in ranks.items():
        task = found.get(key)
        if task is not None:
            task._counter = base + rank
    missing = [key for key in ranks if key not in found]
    extra = [key for key in found if key not in ranks]
    return missing, extra


def scheduler_state() -> list[Any]:
    """The seeded scheduler's generator state as plain data."""
    version, internal, gauss = _generator().getstate()
    return [version, list(internal), gauss]


def restore_scheduler_state(state: Sequence[Any]) -> None:
    """Put back a state from `scheduler_state`.

    Raises:
        ValueError: `state` is not one.
    """
    try:
        version, internal, gauss = state
        _generator().setstate((version, tuple(internal), gauss))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a scheduler state: {exc}") from None


def _generator() -> Any:
    generator = getattr(trio_run_internals, "_r", None)
    if generator is None:  # pragma: no cover - guarded by seeded_scheduler too
        raise RuntimeError(f"trio {trio.__version__} has no scheduler generator to checkpoint")
    return generator


def take_over(
    tasks: Sequence[Sequence[Any]], scheduler: Sequence[Any], *, must_reach: bool = True
) -> Callable[[], None]:
    """Arm a resumed run to take over the task order and scheduler state a checkpoint holds,
    at its next quiescent point (once it has rebuilt its tasks and they all wait).

    Returns a check to call when the run is over: it disarms the take-over if it has not
    happened, and raises `CheckpointError` if the rebuilt run's tasks did not match the
    checkpoint's (then the run cannot have continued exactly), or, with `must_reach`, if the
    run never reached a quiescent point.
    """
    watch = Quiescence()
    found: list[tuple[list[TaskKey], list[TaskKey]]] = []

    def take() -> bool:
        found.append(restore_task_order(tasks))
        restore_scheduler_state(scheduler)
        trio.lowlevel.remove_instrument(watch)
        return True

    watch.wait(take)
    trio.lowlevel.add_instrument(watch)

    def check() -> None:
        with contextlib.suppress(KeyError):  # (removed already)
            trio.lowlevel.remove_instrument(watch)
        if not found:
            if not must_reach:
                return
            raise CheckpointError("the resumed run ended before it reached a quiescent point")
        missing, extra = found[0]
        if missing or extra:
            raise CheckpointError(
                "the resumed run did not rebuild the checkpoint's tasks "
                f"(missing: {_keys(missing)}; not in the checkpoint: {_keys(extra)}): "
                "it cannot continue exactly"
            )

    return check


def _keys(keys: list[TaskKey]) -> str:
    shown = ", ".join("/".join(key) for key in keys[:3])
    return (shown or "none") + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
