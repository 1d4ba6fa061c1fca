"""An observed run closes in no virtual time: the observation server takes real time to close
(its graceful timeout), and while it did, a virtual clock jumped on and the run's retries went
on for a varying while. Two runs of the same seeded program are the same run, to the event."""

from __future__ import annotations

from pathlib import Path

import trio

import spaceactors as sa


class Dock(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


async def program(path: Path) -> float:
    async with sa.open_system(observe="127.0.0.1:0", trace=str(path)) as system:
        dock = await system.spawn(Dock, name="dock")
        dock.pause()  # nothing is acknowledged: the reliable retries go on to the end
        await system.reliable.send(dock, "manifest", timeout=1.0)
        await trio.sleep(3.5)
        return trio.current_time()


def test_an_observed_run_is_the_same_run_twice_and_closes_at_once(tmp_path: Path) -> None:
    ends = [sa.run(program, tmp_path / f"run{i}.jsonl", seed=3) for i in range(2)]
    first, second = ((tmp_path / f"run{i}.jsonl").read_text() for i in range(2))
    assert first == second
    events = [line for line in first.splitlines() if line.startswith("[")]
    assert len(events) > 3  # the send and its retries
    last = max(float(line.split(",", 1)[0].lstrip("[")) for line in events)
    assert last <= ends[0]  # nothing happened while the server closed
