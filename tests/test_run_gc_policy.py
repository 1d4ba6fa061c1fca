"""``spaceactors run`` tunes the garbage collector for the run (``--gc tuned``, the default):
it raises the collection thresholds as the world is handed over to be built, freezes the world
once it is built, and when the run ends, however it ends, it puts back what it found;
``--gc python`` leaves the collector alone."""

from __future__ import annotations

import gc
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from spaceactors.cli import gcpolicy, main

SCENARIO = """
import gc, json
from spaceactors import sim

def record(when):
    with open({path!r}, "a") as f:
        f.write(json.dumps([when, gc.get_threshold(), gc.get_freeze_count() > 0]) + "\\n")

@sim.scenario(duration=60)
async def probe(world):
    record("build")
    await world.add_station("a", (0, 0, 0), sector="x")
    world.at(10.0, lambda: record("run"))
    {fail}
"""


@pytest.fixture(autouse=True)
def python_settings() -> Iterator[tuple[int, int, int]]:
    """Python's own settings around each test, whatever the test leaves."""
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield (700, 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)


def probe(tmp_path: Path, *options: str, fail: str = "") -> tuple[int, dict[str, list[object]]]:
    records = tmp_path / "gc.jsonl"
    scenario = tmp_path / "probe.py"
    scenario.write_text(SCENARIO.format(path=str(records), fail=fail))
    code = main(["run", str(scenario), *options], out=io.StringIO(), err=io.StringIO())
    seen = {}
    for line in records.read_text().splitlines():
        when, threshold, frozen = json.loads(line)
        seen[when] = [tuple(threshold), frozen]
    return code, seen


def test_the_build_collects_rarely_the_built_world_is_frozen_and_the_settings_come_back(
    tmp_path: Path, python_settings: tuple[int, int, int]
) -> None:
    code, seen = probe(tmp_path)
    assert code == 0
    tuned = (gcpolicy.GEN0, gcpolicy.GEN1, gcpolicy.GEN2)
    assert seen["build"] == [tuned, False]  # rare collections; nothing frozen yet
    assert seen["run"] == [tuned, True]
    assert gc.get_threshold() == python_settings
    assert gc.get_freeze_count() == 0


def test_gc_python_leaves_the_collector_alone(
    tmp_path: Path, python_settings: tuple[int, int, int]
) -> None:
    code, seen = probe(tmp_path, "--gc", "python")
    assert code == 0
    assert seen["run"] == [python_settings, False]
    assert gc.get_threshold() == python_settings


def test_settings_of_the_caller_come_back_too(tmp_path: Path) -> None:
    gc.set_threshold(1234, 5, 6)
    code, seen = probe(tmp_path)
    assert code == 0
    assert seen["run"][0] == (gcpolicy.GEN0, gcpolicy.GEN1, gcpolicy.GEN2)
    assert gc.get_threshold() == (1234, 5, 6)


def test_a_run_that_fails_puts_the_settings_back(
    tmp_path: Path, python_settings: tuple[int, int, int]
) -> None:
    # An event that raises at 20 s: the run goes on, and fails its "every event ran" check.
    failing = "world.at(20.0, lambda: 1 / 0)"
    code, seen = probe(tmp_path, fail=failing)
    assert code == 1
    assert seen["run"][0] == (gcpolicy.GEN0, gcpolicy.GEN1, gcpolicy.GEN2)
    assert gc.get_threshold() == python_settings
    assert gc.get_freeze_count() == 0


def test_objects_frozen_by_the_caller_stay_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    policy = gcpolicy.TunedGC()
    policy.apply()
    assert policy.applied
    policy.restore()
    assert not policy.applied
    assert gc.get_freeze_count() >= frozen > 0


def test_applying_says_so_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    policy = gcpolicy.TunedGC()
    with caplog.at_level(logging.DEBUG, logger="spaceactors.cli"):
        policy.apply()
        policy.apply()  # once only
    policy.restore()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("gc:")]
    assert len(lines) == 1, lines
    assert "--gc python" in lines[0]


RESUMED = """
import gc, json
from spaceactors import sim

def record(when, world):
    with open({path!r}, "a") as f:
        frozen = not any(o is world for o in gc.get_objects())
        f.write(json.dumps([when, frozen]) + "\\n")

@sim.scenario(duration=60)
async def probe(world):
    await world.add_station("a", (0, 0, 0), sector="x")
    world.at(10.0, lambda: record("run", world))
    world.at(70.0, lambda: record("resumed", world))
"""


def test_a_resumed_world_is_frozen_once_rebuilt(
    tmp_path: Path, python_settings: tuple[int, int, int]
) -> None:
    """Else the collections that scan the rebuilt heap (a million objects for the 10,000-ship
    fleet) follow as the resumed run goes on."""
    records, scenario, state = tmp_path / "gc.jsonl", tmp_path / "probe.py", tmp_path / "r.db"
    scenario.write_text(RESUMED.format(path=str(records)))
    quiet = {"out": io.StringIO(), "err": io.StringIO()}
    assert (
        main(["run", str(scenario), "--state", str(state), "--checkpoint-every", "20"], **quiet)
        == 0
    )
    assert main(["resume", str(state), "--duration", "80"], **quiet) == 0
    seen = dict(json.loads(line) for line in records.read_text().splitlines())
    assert seen == {"run": True, "resumed": True}
    assert gc.get_threshold() == python_settings
    assert gc.get_freeze_count() == 0
