"""Checkpoint: how long the 10k-ship fleet pauses for a checkpoint, and how long it takes to
resume from one.

large-fleet (10,000 ships, virtual time, seed 1), built as `benchmarks.fleet` builds it, runs
120 simulated seconds with a `Checkpointer` every 30 s. Printed, over its checkpoints:

- pause: the capture, the run's only stop (wall and CPU seconds, `Checkpointer.pauses`); the
  encoding (msgpack) and the size of a checkpoint are shown beside it, as the command's writer
  thread does them while the run goes on;
- resume: from the encoded bytes to the resumed run's first quiescent point: decoding, then
  rebuilding the tree, the world and the scenario's declarations (`sim.persist.resume`), timed
  around the resumed run's own call (wall and CPU).

Targets (issue 15): pause <= 250 ms, resume <= 1 s, at the best of `Options.repeat` runs.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import trio
import trio.testing

import spaceactors as sa
from benchmarks import fleet
from benchmarks.harness import Options, header, show, target
from spaceactors import sim
from spaceactors.checkpoint.driver import Checkpointer
from spaceactors.checkpoint.writer import decode, encode
from spaceactors.sim import persist

NAME = "checkpoint"
DURATION = 120.0
EVERY = 30.0


def checkpointed(n: int) -> tuple[list[dict[str, Any]], Checkpointer]:
    taken: list[dict[str, Any]] = []
    checkpoints = Checkpointer(EVERY, taken.append)

    async def main() -> sim.Summary:
        return await sim.run_scenario(
            fleet.scenario_of(n), seed=fleet.SEED, duration=DURATION, checkpoints=checkpoints
        )

    sa.run(main, seed=fleet.SEED)
    return taken, checkpoints


def resumed(n: int, payload: bytes) -> tuple[float, float]:
    """(wall, CPU) seconds from the bytes to a rebuilt run: decoding, then `persist.resume`
    (timed around the resumed run's own call)."""
    spent: list[tuple[float, float]] = []
    real = persist.resume
    started = (time.perf_counter(), time.process_time())
    doc = decode(payload, "benchmark")
    decoded = (time.perf_counter() - started[0], time.process_time() - started[1])

    async def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = await real(*args, **kwargs)
        spent.append(
            (decoded[0] + time.perf_counter() - wall, decoded[1] + time.process_time() - cpu)
        )
        return result

    async def main() -> sim.Summary:
        return await sim.run_scenario(
            fleet.scenario_of(n), seed=fleet.SEED, duration=DURATION, resume_from=doc
        )

    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(doc["time"])
    persist.resume = timed  # type: ignore[assignment]
    try:
        sa.run(main, seed=fleet.SEED, clock=clock)
    finally:
        persist.resume = real  # type: ignore[assignment]
    return spent[0]


def bench(options: Options) -> list[bool]:
    n = options.size(fleet.SIZE)
    header(NAME, f"large-fleet with {n:,} ships: checkpoint pause and resume time")
    pauses: list[tuple[float, float]] = []
    resumes: list[tuple[float, float]] = []
    size = 0
    encoding = 0.0
    for _ in range(options.repeat):
        gc.collect()
        taken, checkpoints = checkpointed(n)
        pauses += checkpoints.pauses
        started = time.perf_counter()
        payload = encode(taken[-1])
        encoding = time.perf_counter() - started
        size = len(payload)
        resumes.append(resumed(n, payload))
    pause = min(pauses)
    resume = min(resumes)
    show("pause", f"{pause[0] * 1e3:,.1f}", "ms", f"CPU {pause[1] * 1e3:,.1f} ms, worst "
         f"{max(p[0] for p in pauses) * 1e3:,.1f} ms of {len(pauses)}")  # fmt: skip
    show("checkpoint", f"{size / 2**20:,.1f}", "MiB", f"encoded in {encoding * 1e3:,.0f} ms "
         "(the writer thread's work)")  # fmt: skip
    show("resume", f"{resume[0] * 1e3:,.1f}", "ms", f"CPU {resume[1] * 1e3:,.1f} ms")
    return [
        target("pause (ms)", pause[0] * 1e3, 250.0, at_most=True, fmt=".1f"),
        target("resume (ms)", resume[0] * 1e3, 1000.0, at_most=True, fmt=".1f"),
    ]
