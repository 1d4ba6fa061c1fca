"""Deterministic runs: virtual time, a seeded scheduler, and the seed every system inherits.

`run` is `trio.run` made repeatable: under ``trio.testing.MockClock(autojump_threshold=0)``
time jumps straight to the next deadline (an hour of simulation takes as long as its work), and
Trio's scheduler draws its task order from the seed. Systems opened inside take the run's seed
unless given their own, which seeds their RNGs (backoff jitter, retry jitter, fault decisions).
Same seed, same code: the same events in the same order, and the same trace hash.

Trio randomizes the order in which tasks that became runnable together are run, from a
module-level ``random.Random``. Hypothesis makes that order deterministic through a hook Trio
provides for it (sorting each batch by task creation, then shuffling with the seeded generator);
`seeded_scheduler` uses the same hook, and restores the previous state afterwards. The hook is
private to Trio; `seeded_scheduler` fails loudly, rather than silently losing determinism, if a
Trio release removes it.

What a seed cannot make repeatable: real I/O (sockets, files being read, subprocesses), threads
(``trio.to_thread``), wall-clock reads (``time.time``, ``datetime.now``), unseeded randomness
(``random.random()``, ``uuid4``), iteration over sets of strings (hash randomization), and two
tasks of your own that ``trio.sleep`` until the very same instant (Trio breaks that tie by
object identity). Actor timers (`ActorContext.after`/`every`) have no such tie: they share one
schedule ordered by (deadline, sequence).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import trio
import trio.testing
from trio._core import _run as trio_run_internals

T = TypeVar("T")

_RUN_SEED: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "spaceactors_run_seed", default=None
)


def current_seed() -> int | None:
    """The seed of the enclosing `run`, or None outside one."""
    return _RUN_SEED.get()


@contextlib.contextmanager
def seeded_scheduler(seed: int) -> Iterator[None]:
    """Make Trio's task order a function of `seed` within the block (see the module notes).

    Use it around ``trio.run``, or inside a test that pytest-trio runs, before the system
    opens. `run` does this for you.

    Raises:
        RuntimeError: this Trio release lacks the hook (pin a supported Trio version).
    """
    if not hasattr(trio_run_internals, "_r") or not hasattr(
        trio_run_internals, "_ALLOW_DETERMINISTIC_SCHEDULING"
    ):
        raise RuntimeError(
            f"trio {trio.__version__} has no deterministic-scheduling hook; "
            "spaceactors needs it for seeded runs"
        )
    generator = trio_run_internals._r
    saved_state = generator.getstate()
    saved_flag = trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING
    generator.seed(f"spaceactors/{seed}")
    trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    try:
        yield
    finally:
        trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING = saved_flag  # type: ignore[misc]
        generator.setstate(saved_state)


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    seed: int = 0,
    virtual: bool = True,
    clock: trio.abc.Clock | None = None,
) -> T:
    """Run `main(*args)` like `trio.run`, repeatably: virtual time and a seeded scheduler.

    Args:
        seed: seeds Trio's task order and becomes the default seed of every `open_system`
            inside.
        virtual: run on ``MockClock(autojump_threshold=0)``; False runs on the wall clock
            (the task order is still seeded, time is not).
        clock: a clock of your own (overrides `virtual`).
    """
    if clock is None and virtual:
        clock = trio.testing.MockClock(autojump_threshold=0)
    token = _RUN_SEED.set(seed)
    try:
        with seeded_scheduler(seed):
            return trio.run(main, *args, clock=clock)
    finally:
        _RUN_SEED.reset(token)
