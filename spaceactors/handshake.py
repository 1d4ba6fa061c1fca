"""The start handshake of a child: how its starter learns that it started, or why it did not.

Trio's own handshake is ``nursery.start``: it runs the new task in a temporary nursery and moves
it into the target nursery once it calls ``task_status.started()``. That costs about 30 µs a
task, more than the rest of an actor's spawn together, and a fleet of ships and stations that
each have an ``on_start`` paid it for every one. A supervisor starts its children with
``start_soon`` instead, and the starter parks on a `StartWaiter` that the child's runner
settles: started, or failed with the exception to raise in the starter (`StartFailed`, or
`StoppedWhileStarting` when the child ended first). What ``nursery.start`` also does, calling
the start off when the starter is cancelled, the supervisor does itself
(`Supervisor._handshake`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import outcome
import trio


class Handshake:
    """The start handshake a child runner passes on: remembers whether it completed."""

    __slots__ = ("_inner", "done")

    def __init__(self, inner: trio.TaskStatus[None]) -> None:
        self._inner = inner
        self.done = False

    def started(self, value: Any = None) -> None:
        self.done = True
        self._inner.started(value)


class StartWaiter(Handshake):
    """A start handshake whose starter waits in `wait`: `started` wakes it, `fail` wakes it
    with an exception to raise; the first of them counts (later ones are ignored)."""

    __slots__ = ("_result", "_task", "settled_hook")

    def __init__(self) -> None:
        super().__init__(trio.TASK_STATUS_IGNORED)
        self._task: trio.lowlevel.Task | None = None
        self._result: outcome.Outcome[None] | None = None
        self.settled_hook: Callable[[StartWaiter], None] | None = None
        """Called once it is settled (a batch waits for many: `spaceactors.bulk`)."""

    @property
    def settled(self) -> bool:
        """Started or failed."""
        return self._result is not None

    @property
    def error(self) -> BaseException | None:
        """What the start failed with (None: not failed, or not settled yet)."""
        result = self._result
        return result.error if isinstance(result, outcome.Error) else None

    def started(self, value: Any = None) -> None:
        """Raises ``RuntimeError`` if called twice, as Trio's ``task_status.started``."""
        if self.done:
            raise RuntimeError("called 'started' twice on the same task status")
        self.done = True
        self._settle(outcome.Value(None))

    def fail(self, error: BaseException) -> None:
        self._settle(outcome.Error(error))

    def _settle(self, result: outcome.Outcome[None]) -> None:
        if self._result is not None:
            return
        self._result = result
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task, result)
        if self.settled_hook is not None:
            self.settled_hook(self)

    async def wait(self) -> None:
        """Park until settled: return once started, or raise what the start failed with.

        Raises:
            StartFailed, StoppedWhileStarting: what the child's runner failed it with.
            trio.Cancelled: the starter was cancelled first (the start is not settled).
        """
        if self._result is not None:
            await trio.lowlevel.checkpoint()
            self._result.unwrap()
            return
        self._task = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
