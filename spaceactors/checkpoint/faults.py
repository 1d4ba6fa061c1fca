"""The fault injector's part of a checkpoint: its generator, counts and switches, and what it
has put on the router's schedule.

`save` reads ``system.faults`` and ``system.tap`` synchronously at a quiescent point where
`engine.busy` is None; `restore` puts them back in a freshly opened system of the same plan
before its actors start, and returns the step that puts the schedule entries back after the
engine's own (`engine.start` calls both). Everything is plain data; held-back messages go
through the `Values` converter.

What the future of a faulted run depends on, and how a quiescent point holds it:

- **the plan**: saved as its JSON; a resume with another plan (or none) is refused.
- **the injector**: its seeded generator (every probability, delay and crash draw), the clock
  time rule windows count from (``origin``), the rules switched off by name, the counts of
  faults injected and of messages each actor named by a crash rule has handled, and what
  `FaultInjector.unmatched` reports from (patterns matched, rules that covered or fired).
- **the router's schedule**: each rule window's announcement and each pause window's opening
  and closing (``call_at`` entries), and each copy a delay or a reorder holds back, with its
  (deadline, sequence) order; the reordered copies waiting to be overtaken, in order.
- **pauses**: a paused actor makes the point busy (the next one is tried), so none is held.

What it refuses (`CheckpointError`): a reliable message's copy held back by a fault (it lives
on the reliable service's schedule with the retry state, which is not rebuilt around it).
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from spaceactors.checkpoint.context import damaged
from spaceactors.delivery import Scheduled
from spaceactors.errors import CheckpointError
from spaceactors.faultplan import FaultPlan, PauseActor
from spaceactors.trace import EventKind

if TYPE_CHECKING:
    from spaceactors.checkpoint.context import Restoring, Saving
    from spaceactors.faults import FaultInjector
    from spaceactors.system import ActorSystem
    from spaceactors.tap import Tap

FORMAT = 1
"""The version of the fault injector's part of a checkpoint."""


def owns(system: ActorSystem, entry: Scheduled) -> bool:
    """Whether `entry` (on the router's schedule) was put there by the fault plan."""
    call = entry.on_due if entry.on_due is not None else entry.report
    tap = system.tap
    if call is None or tap is None or tap.faults is None:
        return False  # (most entries: a timer or a send_later, told nothing)
    return isinstance(call, functools.partial) and call.func in (
        tap._announced,
        tap._pause_window_opens,
        tap._pause_window_closes,
        tap._landed,
    )


def save(system: ActorSystem, saving: Saving) -> dict[str, Any] | None:
    """The fault injector's state as plain data (None: the system has no fault plan).

    Raises:
        CheckpointError: a held-back copy cannot be saved (the converter names it), or an
            actor is held by a pause (`engine.busy` says so first).
    """
    faults, tap = system.faults, system.tap
    if faults is None or tap is None:
        return None
    rules = faults.plan.rules
    index = {id(rule): i for i, rule in enumerate(rules)}
    for ref in tap._paused:
        if ref.alive:
            raise CheckpointError(f"cannot checkpoint: actor {ref.name!r} is held by a pause")
    version, internal, gauss = faults._rng.getstate()
    schedule = system.router.state.schedule
    entries: list[list[Any]] = []
    keys: dict[int, list[Any]] = {}  # id(entry) -> its key, for the reordered copies
    for deadline, sequence, entry in schedule.entries():
        if owns(system, entry):
            entries.append([deadline, sequence, *_meaning(tap, entry, index, saving)])
            keys[id(entry)] = [deadline, sequence]
    held = []
    for ref, pairs in tap._held.items():
        waiting = [keys[id(entry)] for _, entry in pairs if entry.active and id(entry) in keys]
        if waiting:
            held.append([ref.id, waiting])
    return {
        "format": FORMAT,
        "plan": faults.plan.to_json().decode(),
        "origin": faults.origin,
        "rng": [version, list(internal), gauss],
        "off": sorted(faults._off),
        "injected": [[kind, n] for kind, n in faults.injected.items()],
        "counts": [[actor, n] for actor, n in faults._counts.items()],
        "named": sorted(faults._named),
        "covered": sorted(index[i] for i in faults._covered),
        "fired": sorted(index[i] for i in faults._fired),
        "entries": entries,
        "held": held,
    }


def _meaning(tap: Tap, entry: Scheduled, index: dict[int, int], saving: Saving) -> list[Any]:
    """What a fault's schedule entry does, as plain data."""
    call = entry.on_due if entry.on_due is not None else entry.report
    assert isinstance(call, functools.partial)
    if call.func == tap._announced:
        kind, detail = call.args
        return ["announce", kind.value, detail]
    if call.func == tap._pause_window_opens:
        return ["opens", index[id(call.args[1])]]
    if call.func == tap._pause_window_closes:
        return ["closes", index[id(call.args[0])]]
    assert entry.ref is not None
    where = f"a copy of a message to {entry.ref.name!r} a fault holds back"
    return ["copy", entry.ref.id, saving.value(entry.message, where)]


def restore(
    system: ActorSystem, doc: Mapping[str, Any] | None, restoring: Restoring
) -> Callable[[], None]:
    """Put back the injector `doc` (from `save`) holds, in `system` (opened with the same
    plan, before its actors start); returns the step that puts its schedule entries back
    (after the engine has restored the router's schedule).

    Raises:
        CheckpointError: the plans differ (or one run has none), or `doc` is damaged.
    """
    faults, tap = system.faults, system.tap
    if doc is None:
        if faults is not None:
            raise CheckpointError(
                "the checkpoint was taken without a fault plan and the resumed run has one: "
                "resume it as it was run"
            )
        return lambda: None
    if faults is None or tap is None:
        raise CheckpointError(
            "the checkpoint was taken with a fault plan and the resumed run has none: resume "
            "it with the same plan"
        )
    with damaged("fault injector's state"):
        if doc.get("format") != FORMAT:
            raise CheckpointError(
                f"the checkpoint's fault injector state is format {doc.get('format')!r}, this "
                f"spaceactors reads format {FORMAT}"
            )
        if FaultPlan.from_json(str(doc["plan"])) != faults.plan:
            raise CheckpointError(
                "the checkpoint was taken with another fault plan than the resumed run's: "
                "resume it with the same plan"
            )
        _injector(faults, doc)
    return functools.partial(_schedule, system, tap, doc, restoring)


def _injector(faults: FaultInjector, doc: Mapping[str, Any]) -> None:
    rules = faults.plan.rules
    version, internal, gauss = doc["rng"]
    faults._rng.setstate((int(version), tuple(int(n) for n in internal), gauss))
    faults.origin = float(doc["origin"])
    faults._off = {str(name) for name in doc["off"]}
    faults.injected.clear()
    faults.injected.update({str(kind): int(n) for kind, n in doc["injected"]})
    faults._counts.clear()
    faults._counts.update({str(actor): int(n) for actor, n in doc["counts"]})
    faults._named = {str(pattern) for pattern in doc["named"]}
    faults._covered = {id(rules[int(i)]) for i in doc["covered"]}
    faults._fired = {id(rules[int(i)]) for i in doc["fired"]}


def _schedule(system: ActorSystem, tap: Tap, doc: Mapping[str, Any], restoring: Restoring) -> None:
    with damaged("fault injector's state"):
        assert tap.faults is not None
        rules = tap.faults.plan.rules
        schedule = system.router.state.schedule
        report = system.router._count_scheduled
        by_key: dict[tuple[float, int], Scheduled] = {}
        for deadline, sequence, what, *rest in doc["entries"]:
            deadline, sequence = float(deadline), int(sequence)
            on_due: Callable[[Scheduled], None] | None = None
            if what == "announce":
                on_due = tap._announce(EventKind(rest[0]), str(rest[1]))
            elif what in ("opens", "closes"):
                pause = rules[int(rest[0])]
                if not isinstance(pause, PauseActor):
                    raise CheckpointError(f"fault rule {int(rest[0])} is no pause")
                on_due = (
                    functools.partial(tap._pause_window_opens, system, pause)
                    if what == "opens"
                    else functools.partial(tap._pause_window_closes, pause)
                )
            elif what != "copy":
                raise CheckpointError(f"a fault's schedule entry of unknown kind {what!r}")
            if on_due is not None:
                entry = Scheduled(deadline, None, None, on_due=on_due)
            else:
                ref = restoring.ref(int(rest[0]))
                message = restoring.value(rest[1])
                landed = functools.partial(tap._landed, report)
                entry = Scheduled(deadline, ref, message, report=landed)
            by_key[deadline, sequence] = entry
            heapq.heappush(schedule._heap, (deadline, sequence, entry))
        tap._held.clear()
        for actor_id, keys in doc["held"]:
            ref = restoring.ref(int(actor_id))
            tap._held[ref] = [(schedule, by_key[float(d), int(s)]) for d, s in keys]
