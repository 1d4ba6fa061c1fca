"""Checks for the invariants a system under faults must keep; each raises AssertionError
with what went wrong, to which actor or message, so a failing property says why."""

from __future__ import annotations

import collections
from collections.abc import Hashable, Iterable, Mapping

import trio

from spaceactors.checks import seconds
from spaceactors.errors import DeliveryFailed, OutcomeForgotten, SpaceActorsError, UnknownMessage
from spaceactors.receiver import MessageId
from spaceactors.supervisor import Supervisor
from spaceactors.system import ActorSystem
from spaceactors.trace import EventKind


def reliable_outcome(system: ActorSystem, message_id: MessageId) -> str:
    """``"pending"``, ``"delivered"``, ``"failed"``, ``"forgotten"`` (past `KEEP_FAILURES`)
    or ``"unknown"`` (never issued, or withdrawn by a cancelled send)."""
    state = system.reliable.state
    if message_id in state.pending:
        return "pending"
    try:
        state.book.outcome(message_id)
        error = None
    except SpaceActorsError as exc:
        error = exc
    if isinstance(error, DeliveryFailed):
        return "failed"
    if isinstance(error, OutcomeForgotten):
        return "forgotten"
    if isinstance(error, UnknownMessage):
        return "unknown"
    return "delivered"


def assert_no_reliable_message_lost(system: ActorSystem) -> None:
    """Every reliable message sent was acknowledged or reported failed; none is pending."""
    stats = system.reliable.stats()
    if stats.pending:
        pending = sorted(system.reliable.state.pending)[:10]
        raise AssertionError(f"{stats.pending} reliable messages still pending: ids {pending}...")
    if stats.sent != stats.acknowledged + stats.failed:
        raise AssertionError(
            f"reliable messages unaccounted for: sent {stats.sent}, acknowledged "
            f"{stats.acknowledged}, failed {stats.failed}"
        )


def assert_exactly_once(
    system: ActorSystem, sent: Mapping[Hashable, MessageId], processed: Iterable[Hashable]
) -> None:
    """Each message in `sent` (your key -> its reliable id) was processed once if delivered,
    never if it failed, and never twice; `processed` lists keys as your actors handled them."""
    counts = collections.Counter(processed)
    problems = []
    for key, message_id in sent.items():
        outcome = reliable_outcome(system, message_id)
        times = counts.pop(key, 0)
        expected = {"delivered": 1, "failed": 0}.get(outcome)
        if expected is None:
            problems.append(f"{key!r} (id {message_id}) is {outcome}")
        elif times != expected:
            problems.append(f"{key!r} (id {message_id}) was {outcome} but processed {times}x")
    problems.extend(f"{key!r} was processed {n}x but never sent" for key, n in counts.items())
    if problems:
        raise AssertionError("exactly-once processing broken: " + "; ".join(problems[:10]))


def assert_restarts_within_intensity(system: ActorSystem) -> None:
    """No supervisor restarted more than its intensity allows (needs a trace), unless it gave
    up, as OTP prescribes; a give-up of the root shows as the system's error instead.

    One decision restarts a whole group (one_for_all, rest_for_one) at one instant, so the
    RESTART events of one supervisor at one instant count once. It reads the events the trace
    kept in memory (`Trace.events`, the last 100,000 by default).
    """
    if system.trace is None:
        raise AssertionError("restart intensity is checked on the trace: open with trace=...")
    limits = {sup.path: (sup.spec.max_restarts, sup.spec.within) for sup in _supervisors(system)}
    restarts: dict[str, list[float]] = collections.defaultdict(list)
    gave_up = set()
    for event in system.trace.events:
        if event.kind is EventKind.RESTART and event.peer is not None:
            times = restarts[event.peer]
            if not times or times[-1] != event.time:  # one decision, one restart
                times.append(event.time)
        elif event.kind is EventKind.GIVE_UP and event.peer is not None:
            gave_up.add(event.peer)
    for path, times in restarts.items():
        if path in gave_up or path not in limits:
            continue
        most, within = limits[path]
        for index, start in enumerate(times):
            window = [t for t in times[index:] if t - start <= within]
            if len(window) > most:
                raise AssertionError(
                    f"supervisor {path!r} restarted {len(window)} times within {within} s "
                    f"from t={start:g} (its intensity allows {most}) without giving up"
                )


def _supervisors(system: ActorSystem) -> list[Supervisor]:
    found, todo = [], [system.root]
    while todo:
        supervisor = todo.pop()
        found.append(supervisor)
        todo.extend(
            child.handle
            for child in supervisor._children.values()
            if isinstance(child.handle, Supervisor)
        )
    return found


def busy(system: ActorSystem) -> list[str]:
    """What keeps the system from being idle: non-empty mailboxes, pending reliable messages,
    deliveries on a schedule (periodic timers do not count)."""
    reasons = [
        f"{ref.name} has {ref.mailbox_depth} queued"
        for ref in system.registry.refs()
        if ref.mailbox_depth
    ]
    if system.reliable.pending_count():
        reasons.append(f"{system.reliable.pending_count()} reliable messages pending")
    waiting = [
        entry
        for _, _, entry in system.router.state.schedule._heap
        if entry.active and entry.interval is None and entry.ref is not None
    ]
    if waiting:
        reasons.append(f"{len(waiting)} scheduled deliveries")
    return reasons


async def wait_until_idle(system: ActorSystem, timeout: float = 3600.0, poll: float = 0.5) -> None:  # noqa: ASYNC109
    """Wait (in the system's time) until `busy` finds nothing: every actor eventually idle.

    Raises:
        AssertionError: still busy after `timeout` seconds, saying with what.
        ValueError: `timeout` is not seconds >= 0, or `poll` not finite seconds > 0.
    """
    timeout = seconds("timeout", timeout, infinite=True)
    poll = seconds("poll", poll, zero=False)
    reasons: list[str] = []
    with trio.move_on_after(timeout):
        # Polls: idleness is a state of many objects, with no one event to wait on.
        while reasons := busy(system):  # noqa: ASYNC110
            await trio.sleep(poll)
        return
    raise AssertionError(f"not idle after {timeout} s: {'; '.join(reasons)}")


def task_count() -> int:
    """How many Trio tasks are alive in this run (for leak checks around a system)."""
    root = trio.lowlevel.current_root_task()
    assert root is not None, "task_count() runs inside trio.run"
    count, todo = 0, [root]
    while todo:
        task = todo.pop()
        count += 1
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return count


def assert_no_task_leaked(before: int) -> None:
    """No more tasks are alive than `before` (a `task_count` taken before the system opened)."""
    after = task_count()
    if after > before:
        raise AssertionError(
            f"{after - before} tasks outlived the system: {after} alive, {before} before it opened"
        )
