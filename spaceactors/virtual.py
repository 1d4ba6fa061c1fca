"""Deterministic runs: virtual time, a seeded scheduler, and the seed every system inherits.

`run` is `trio.run` made repeatable: under ``trio.testing.MockClock(autojump_threshold=0)``
time jumps straight to the next deadline (an hour of simulation takes as long as its work), and
Trio's scheduler draws its task order from the seed. Systems opened inside take the run's seed
unless given their own, which seeds their RNGs (backoff jitter, retry jitter, fault decisions).
Same seed, same code: the same events in the same order, and the same trace hash.

Trio randomizes the order in which tasks that became runnable together are run, from a
module-level ``random.Random``. Hypothesis makes that order deterministic through a hook Trio
provides for it (sorting each batch by task creation, then shuffling with the seeded generator);
`seeded_scheduler` uses the same hook, and restores the previous state afterwards. The
generator is one for the whole process: while a seeded run goes, a Trio run in another thread
(the observation server's) draws from a generator of its own, never from the run's sequence.
The hook is private to Trio; `seeded_scheduler` fails loudly, rather than silently losing
determinism, if a Trio release removes it.

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
import os
import random
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableSequence
from typing import TYPE_CHECKING, Any, TypeVar

import trio
import trio.testing
from trio._core import _run as trio_run_internals

if TYPE_CHECKING:
    from spaceactors.checkpoint.program import Resume

T = TypeVar("T")

_RUN_SEED: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "spaceactors_run_seed", default=None
)


_RESUME: contextvars.ContextVar[list[Resume] | None] = contextvars.ContextVar(
    "spaceactors_run_resume", default=None
)


def take_resume() -> Resume | None:
    """The checkpoint ``run(main, resume_from=...)`` resumes, for the first system opened in
    it (None: none, or taken already)."""
    held = _RESUME.get()
    return held.pop() if held else None


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
    trio_run_internals._r = _ThisThread(generator, threading.get_ident())
    try:
        yield
    finally:
        trio_run_internals._r = generator
        trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING = saved_flag  # type: ignore[misc]
        generator.setstate(saved_state)


class _ThisThread(random.Random):
    """Trio's scheduler generator while a seeded run goes: the seeded one in the run's thread,
    an unseeded one of its own in any other thread.

    The generator is one object for the whole process. A Trio run in another thread (the
    observation server's, serving ``/status`` while the run goes) would otherwise draw from
    the seeded run's sequence whenever it served a request, and the run's order of tasks would
    depend on when requests came. In the run's thread the draws are exactly the seeded
    generator's own (``shuffle``, ``random`` and ``getrandbits`` go to it whole).
    """

    def __init__(self, seeded: random.Random, thread: int) -> None:
        self._made = False
        self._seeded = seeded
        self._thread = thread
        self._others = random.Random()
        super().__init__()  # (calls `seed`: ignored, the seeded generator keeps its seed)
        self._made = True

    def seed(self, *args: Any, **kwargs: Any) -> None:
        """Seed this thread's generator (a `seeded_scheduler` nested in the run's thread)."""
        if self._made:
            self._current().seed(*args, **kwargs)

    def _current(self) -> random.Random:
        return self._seeded if threading.get_ident() == self._thread else self._others

    def shuffle(self, x: MutableSequence[Any]) -> None:
        """(What Trio's scheduler calls for each batch: one choice of generator per batch.)"""
        self._current().shuffle(x)

    def random(self) -> float:
        return self._current().random()

    def getrandbits(self, k: int) -> int:
        return self._current().getrandbits(k)

    def getstate(self) -> Any:
        """The seeded generator's state (a checkpoint's scheduler state)."""
        return self._seeded.getstate()

    def setstate(self, state: Any) -> None:
        self._seeded.setstate(state)


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    seed: int | None = None,
    virtual: bool = True,
    clock: trio.abc.Clock | None = None,
    resume_from: str | os.PathLike[str] | None = None,
) -> T:
    """Run `main(*args)` like `trio.run`, repeatably: virtual time and a seeded scheduler.

    Args:
        seed: seeds Trio's task order and becomes the default seed of every `open_system`
            inside (default 0; resuming, the checkpointed run's).
        virtual: run on ``MockClock(autojump_threshold=0)``; False runs on the wall clock
            (the task order is still seeded, time is not).
        clock: a clock of your own (overrides `virtual`).
        resume_from: a state file `ActorSystem.checkpoint` wrote: the run starts at its last
            checkpoint's time with its seed, and the first system `main` opens resumes from
            it (as ``open_system(resume_from=...)``; ``system.resumed`` is True). `main` runs
            from its top. Virtual time only.

    Raises:
        StateFileError: `resume_from` is missing, damaged or another program's (one line).
        CheckpointError: `resume_from` with a wall clock or a clock of your own, or another
            `seed` than the checkpointed run's.
    """
    held: list[Resume] = []
    if resume_from is not None:
        from spaceactors.checkpoint import program
        from spaceactors.errors import CheckpointError

        resume = program.load(resume_from)
        if clock is not None or not virtual:
            raise CheckpointError(
                "run(resume_from=...) runs on virtual time from the checkpoint's instant: "
                "give it no clock of your own"
            )
        saved = resume.run_seed if resume.run_seed is not None else resume.seed
        if seed is not None and seed != saved:
            raise CheckpointError(
                f"{resume.path}: its run had seed {saved}, not {seed}: resume it with the "
                "same seed (or none)"
            )
        seed = saved
        clock = trio.testing.MockClock(autojump_threshold=0)
        clock.jump(resume.time)
        held.append(resume)
    if seed is None:
        seed = 0
    if clock is None and virtual:
        clock = trio.testing.MockClock(autojump_threshold=0)
    token = _RUN_SEED.set(seed)
    resuming = _RESUME.set(held)
    try:
        with seeded_scheduler(seed):
            return trio.run(main, *args, clock=clock)
    finally:
        _RESUME.reset(resuming)
        _RUN_SEED.reset(token)
