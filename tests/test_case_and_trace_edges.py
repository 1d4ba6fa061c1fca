"""Edges a tester found around cases and traces: each kind pinned.

- a case file with a key given twice is an edited file: refused, naming the key;
- `Trace.of_kind` takes a kind's value (``"crash"``) as well as the `EventKind`, and refuses a
  name that is no kind instead of finding nothing;
- a JSON Lines trace whose last line was cut mid-write (a killed run) still loads, without it;
  a broken line anywhere else is still refused;
- a case's `failure` is one line: the error's first line, not pytest's explanations after it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import trio

import spaceactors as sa
from spaceactors import testing as sat
from spaceactors.testing.replay import one_line


def test_a_case_with_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "twice.json"
    path.write_text('{"format": "spaceactors-case", "format": "other"}', encoding="utf-8")
    with pytest.raises(sat.CaseError, match="the key 'format' appears twice"):
        sat.replay(path)


class Crashes(sa.Actor):
    async def handle(self, message: object) -> object:
        raise ValueError("boom")


async def crash_once() -> sa.Trace:
    async with sa.open_system(trace=True) as system:
        ref = await system.spawn(Crashes, name="crashes")
        await ref.send(1)
        await trio.sleep(1)
        assert system.trace is not None
        return system.trace


@pytest.mark.parametrize("kind", [sa.EventKind.CRASH, "crash"])
def test_of_kind_takes_a_kind_or_its_value(kind: sa.EventKind | str) -> None:
    trace = sa.run(crash_once)
    (crash,) = trace.of_kind(kind)
    assert crash.actor == "crashes"


def test_of_kind_refuses_a_name_that_is_no_kind() -> None:
    trace = sa.run(crash_once)
    with pytest.raises(ValueError, match="no event kind 'crashed': the kinds are 'send'"):
        trace.of_kind("crashed")


def test_a_trace_cut_mid_write_loads_without_its_last_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run.jsonl"
    trace = sa.run(crash_once)
    sink = sa.JsonLinesSink(path)
    for event in trace.events:
        sink.write(event, event.to_json())
    sink.close()
    whole = sa.load_trace(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])  # the last event's line, cut
    with caplog.at_level(logging.WARNING, logger="spaceactors.tracefile"):
        assert sa.load_trace(path) == whole[:-1]
    assert "the last line was cut mid-write" in caplog.text
    lines = data.split(b"\n")
    lines[2] = lines[2][:-5]  # a broken line that is not the last: still refused
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"run\.jsonl:3:"):
        sa.load_trace(path)


def test_a_failure_is_saved_as_its_first_line() -> None:
    error = AssertionError("booked twice: [1, 1]\nassert 2 == 1\n +  where 2 = len([1, 1])")
    assert one_line(error) == "AssertionError: booked twice: [1, 1]"
    assert json.dumps(one_line(ValueError("")))  # an empty message still makes a line
