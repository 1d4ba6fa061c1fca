"""Checkpoint: how long the 10k-ship fleet stops for a checkpoint, and how long it takes to
resume from one.

large-fleet (10,000 ships, virtual time, seed 1), built as `benchmarks.fleet` builds it, runs
240 simulated seconds with a `Checkpointer` every 60 s (as far apart in real time as every 30 s
was before the simulation core moved to arrays and ran twice as fast), whose checkpoints go, as
the command's do, to a state file in a temporary folder: on Linux from a child process forked at the
quiescent point (`spaceactors.checkpoint.forked`: the child captures, encodes and writes),
elsewhere captured in the run and written by a `StateWriter` thread. Printed, over its
checkpoints:

- stall: the run's longest stop around a checkpoint, as the run sees it (`benchmarks.stalls`:
  the longest stretch between two task steps, from the checkpoint's start to the end of the
  child, or of the writer thread's encoding, the time it holds the GIL), wall and the run
  thread's CPU; beside it the longest stretch of the same run away from every checkpoint
  (its own longest step);
- capture: the run's own pause (`Checkpointer.pauses`: the fork, or the capture), wall and
  CPU;
- the size of a checkpoint and its encoding time; forked, what each child took in all;
- resume: from the state file to the resumed run's first quiescent point, where it takes over
  the checkpoint's task order and goes on, in four parts: reading the latest checkpoint
  (`StateFile.latest`), decoding it (`writer.decode`), rebuilding the tree, the world and the
  scenario's declarations (`sim.persist.resume`, timed around the resumed run's own call;
  wall and CPU), and from there to the take-over (`quiescence.restore_task_order`). The
  resumed run uses the command's memory policy (``--gc tuned``: `TunedGC`, thresholds raised,
  everything frozen once rebuilt), as ``spaceactors resume`` does; with Python's own settings
  the collections that scan the rebuilt heap (some 0.9 s) would fall in the take-over.
  The rebuild spawns every actor again: `spawn` shows what the resumed run's own spawning
  of its 10,000 actors costs (`rebuilding.respawn`, timed inside the rebuild).

Targets (issue 15): stall <= 250 ms, resume <= 1 s, at the best of `Options.repeat` runs.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio
import trio.testing

import spaceactors as sa
from benchmarks import fleet
from benchmarks.harness import Options, header, show, target
from benchmarks.stalls import Stalls, Stretch
from spaceactors import sim
from spaceactors.checkpoint import quiescence, rebuilding
from spaceactors.checkpoint import writer as writing
from spaceactors.checkpoint.driver import Checkpointer
from spaceactors.checkpoint.forked import FORKS, ForkedWriter
from spaceactors.checkpoint.store import StateFile
from spaceactors.cli.gcpolicy import TunedGC
from spaceactors.sim import persist

NAME = "checkpoint"
DURATION = 240.0
EVERY = 60.0

Times = tuple[float, float]
"""(wall, CPU) seconds."""


async def main(
    n: int,
    checkpoints: Checkpointer | None,
    resume_from: dict[str, Any] | None,
    stalls: Stalls | None = None,
    keep_world: Callable[[sim.World], None] | None = None,
) -> sim.Summary:
    """The run, checkpointed or resumed: one function, as a resumed run must enter the same
    way as the run it carries on (its tasks are found again by where they sit)."""
    if stalls is not None:
        trio.lowlevel.add_instrument(stalls)
    return await sim.run_scenario(
        fleet.scenario_of(n),
        seed=fleet.SEED,
        duration=DURATION,
        checkpoints=checkpoints,
        resume_from=resume_from,
        keep_world=keep_world,
    )


@attrs.frozen
class Checkpointed:
    """A checkpointed run's figures."""

    stalls: list[Stretch]  # the longest stretch around each checkpoint
    elsewhere: Stretch  # the longest stretch away from every checkpoint
    captures: list[Times]
    encodings: list[float]  # seconds, in the writer thread (or child)
    size: int  # bytes of the last checkpoint
    children: list[float] = attrs.field(factory=list)  # seconds each child took, if forked


@contextmanager
def _patched(module: Any, name: str, replacement: Any) -> Iterator[None]:
    real = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, real)


def checkpointed(n: int, path: str) -> Checkpointed:
    """Run with checkpoints written to the state file at `path` (created here), as the
    command writes them: from a child process where the machine can fork, else from a
    thread."""
    StateFile.create(path, scenario="large-fleet", seed=fleet.SEED, code="benchmark").close()
    if FORKS:
        return _forked(n, path)
    state = writing.StateWriter(path)
    stalls = Stalls()
    starts: list[float] = []
    encoded: list[tuple[float, float]] = []  # (start, end) of each encoding, perf_counter
    sizes: list[int] = []
    real_encode = writing.encode

    def encode(doc: dict[str, Any]) -> bytes:
        started = time.perf_counter()
        payload = real_encode(doc)
        encoded.append((started, time.perf_counter()))
        sizes.append(len(payload))
        return payload

    checkpoints: Checkpointer

    def sink(doc: dict[str, Any]) -> None:
        starts.append(time.perf_counter() - checkpoints.pauses[-1][0])
        state.put(doc)

    checkpoints = Checkpointer(EVERY, sink)
    with _patched(writing, "encode", encode):
        try:
            sa.run(main, n, checkpoints, None, stalls, seed=fleet.SEED)
        finally:
            state.close()
    windows = [(start, end) for start, (_, end) in zip(starts, encoded, strict=True)]
    return Checkpointed(
        stalls=[stalls.longest(start, end) for start, end in windows],
        elsewhere=stalls.longest_outside(windows),
        captures=list(checkpoints.pauses),
        encodings=[end - start for start, end in encoded],
        size=sizes[-1],
    )


def _forked(n: int, path: str) -> Checkpointed:
    """The run pauses to fork; each child captures, encodes and writes. A checkpoint's window
    is from its pause's start to its child's end (the child's own figures)."""
    stalls = Stalls()
    starts: list[float] = []
    checkpoints = Checkpointer(EVERY, lambda doc: None)
    writer = checkpoints.background = ForkedWriter(path)
    real_take = writer.take

    def take(*args: Any) -> None:
        starts.append(time.perf_counter())
        real_take(*args)

    writer.take = take  # type: ignore[method-assign]
    try:
        sa.run(main, n, checkpoints, None, stalls, seed=fleet.SEED)
    finally:
        checkpoints.close()
    windows = [
        (start, start + done.capture + done.encode + done.write)
        for start, done in zip(starts, writer.written, strict=True)
    ]
    return Checkpointed(
        stalls=[stalls.longest(start, end) for start, end in windows],
        elsewhere=stalls.longest_outside(windows),
        captures=list(checkpoints.pauses),
        encodings=[done.encode for done in writer.written],
        size=writer.written[-1].size,
        children=[done.capture + done.encode + done.write for done in writer.written],
    )


@attrs.frozen
class Resumed:
    """A resume's figures: (wall, CPU) of each part."""

    read: Times
    decode: Times
    rebuild: Times
    spawn: Times  # the part of `rebuild` spent starting the children again
    take_over: Times  # from the rebuild's end to the take-over at the first quiescent point

    @property
    def total(self) -> Times:
        parts = (self.read, self.decode, self.rebuild, self.take_over)
        return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _since(started: Times) -> Times:
    return time.perf_counter() - started[0], time.process_time() - started[1]


def _now() -> Times:
    return time.perf_counter(), time.process_time()


def resumed(n: int, path: str) -> Resumed:
    """Resume from the latest checkpoint in `path`, timing each part."""
    started = _now()
    with StateFile.open(path) as state:
        latest = state.latest()
    assert latest is not None
    read = _since(started)
    started = _now()
    doc = writing.decode(latest.payload, "benchmark")
    decoded = _since(started)
    rebuilt: list[Times] = []
    spawning: list[Times] = []
    real_resume, real_respawn = persist.resume, rebuilding.respawn

    async def resume(*args: Any, **kwargs: Any) -> Any:
        began = _now()
        result = await real_resume(*args, **kwargs)
        rebuilt.append(_since(began))
        return result

    async def respawn(*args: Any, **kwargs: Any) -> None:
        began = _now()
        await real_respawn(*args, **kwargs)
        spawning.append(_since(began))

    taken_over: list[Times] = []

    def take_over(saved: Any) -> Any:
        result = real_take_over(saved)
        taken_over.append(_now())
        return result

    real_take_over = quiescence.restore_task_order
    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(doc["time"])
    with (
        _patched(persist, "resume", resume),
        _patched(rebuilding, "respawn", respawn),
        _patched(quiescence, "restore_task_order", take_over),
    ):
        memory = TunedGC()  # as ``spaceactors resume`` does: frozen once rebuilt
        memory.raise_thresholds()
        began = _now()
        try:
            sa.run(main, n, None, doc, None, lambda _: memory.apply(), seed=fleet.SEED, clock=clock)
        finally:
            memory.restore()
    until = taken_over[0]
    whole = until[0] - began[0], until[1] - began[1]
    after = whole[0] - rebuilt[0][0], whole[1] - rebuilt[0][1]
    return Resumed(read, decoded, rebuilt[0], spawning[0], after)


def _ms(times: Times | Stretch) -> str:
    wall = times.wall if isinstance(times, Stretch) else times[0]
    return f"{wall * 1e3:,.1f}"


def _cpu(times: Times | Stretch) -> str:
    cpu = times.cpu if isinstance(times, Stretch) else times[1]
    return f"CPU {cpu * 1e3:,.1f} ms"


def bench(options: Options) -> list[bool]:
    n = options.size(fleet.SIZE)
    header(NAME, f"large-fleet with {n:,} ships: checkpoint stall and resume time")
    runs: list[Checkpointed] = []
    resumes: list[Resumed] = []
    with tempfile.TemporaryDirectory() as folder:
        for attempt in range(options.repeat):
            gc.collect()
            path = os.path.join(folder, f"run{attempt}.db")
            runs.append(checkpointed(n, path))
            gc.collect()
            resumes.append(resumed(n, path))
    stalls = [stall for run in runs for stall in run.stalls]
    stall = min(stalls, key=lambda s: s.wall)
    worst = max(stalls, key=lambda s: s.wall)
    captures = [capture for run in runs for capture in run.captures]
    capture = min(captures)
    elsewhere = min((run.elsewhere for run in runs), key=lambda s: s.wall)
    resume = min(resumes, key=lambda r: r.total[0])
    show("stall", _ms(stall), "ms", f"{_cpu(stall)}; worst {_ms(worst)} ms ({_cpu(worst)}) "
         f"of {len(stalls)}")  # fmt: skip
    show("  away from them", _ms(elsewhere), "ms", f"{_cpu(elsewhere)} (the run's own longest)")
    show("capture", _ms(capture), "ms", f"{_cpu(capture)}; worst {max(captures)[0] * 1e3:,.1f} ms")
    encoding = min(e for run in runs for e in run.encodings)
    where = "child process" if runs[-1].children else "writer thread"
    show("checkpoint", f"{runs[-1].size / 2**20:,.1f}", "MiB", f"encoded in "
         f"{encoding * 1e3:,.0f} ms ({where})")  # fmt: skip
    children = [took for run in runs for took in run.children]
    if children:
        show("  child", f"{min(children) * 1e3:,.0f}", "ms", "capture, encode and write, "
             f"beside the run; worst {max(children) * 1e3:,.0f} ms")  # fmt: skip
    show("resume", _ms(resume.total), "ms", _cpu(resume.total))
    show("  read", _ms(resume.read), "ms", _cpu(resume.read))
    show("  decode", _ms(resume.decode), "ms", _cpu(resume.decode))
    show("  rebuild", _ms(resume.rebuild), "ms", _cpu(resume.rebuild))
    show("    of it spawning", _ms(resume.spawn), "ms", f"{_cpu(resume.spawn)} "
         f"({resume.spawn[0] / n * 1e6:,.1f} µs per actor)")  # fmt: skip
    show("  take-over", _ms(resume.take_over), "ms", f"{_cpu(resume.take_over)} (to the "
         "first quiescent point)")  # fmt: skip
    return [
        target("stall (ms)", stall.wall * 1e3, 250.0, at_most=True, fmt=".1f"),
        target("resume (ms)", resume.total[0] * 1e3, 1000.0, at_most=True, fmt=".1f"),
    ]
