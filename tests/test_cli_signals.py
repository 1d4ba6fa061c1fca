"""Ctrl-C and SIGTERM on a real `spaceactors run`: one line, the signal's exit code, nothing lost.

Each test starts the command as a subprocess, waits until it is where the test wants it (its
progress bar, or a line its scenario prints), sends real signals, and bounds every wait.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import spaceactors as sa

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMEOUT = 30.0  # seconds: a bound on each wait, far above what a run takes here

# Markers on stderr tell the test where the command is. Clock: wall, so the phases last.
LOADING_SLOWLY = """
import sys, time
print("loading", file=sys.stderr, flush=True)
time.sleep(30)
"""

BUILDING_SLOWLY = """
import sys
import trio
from spaceactors import sim

@sim.scenario(duration=3600)
async def slow_build(world):
    await world.add_station("a", (0, 0, 0), sector="x")
    print("building", file=sys.stderr, flush=True)
    await trio.sleep(30)
"""

STOPPING_SLOWLY = """
import math, sys
import trio
import spaceactors as sa
from spaceactors import sim

class Slow(sa.Actor):
    async def handle(self, message):
        return None

    async def on_stop(self):
        print("stopping", file=sys.stderr, flush=True)
        await trio.sleep(30)

@sim.scenario(duration=3600)
async def slow_stop(world):
    await world.add_station("a", (0, 0, 0), sector="x")
    await world.system.spawn(Slow, name="slow", shutdown=math.inf)
    print("running", file=sys.stderr, flush=True)
"""


class Command:
    """`python -m spaceactors ARGS` with stderr read as it comes."""

    def __init__(self, *argv: str, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spaceactors", *argv],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.err = b""

    def wait_for(self, marker: bytes) -> None:
        """Read stderr until `marker` shows (the command got that far)."""
        assert self.process.stderr is not None
        deadline = time.monotonic() + TIMEOUT
        while marker not in self.err:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                self.kill()
                pytest.fail(f"never saw {marker!r}; stderr so far: {self.err[-500:]!r}")
            ready, _, _ = select.select([self.process.stderr], [], [], left)
            if ready:
                self.err += os.read(self.process.stderr.fileno(), 65536)

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self) -> tuple[int, str, str]:
        """Wait for the end: exit code, stdout, and the last line of stderr."""
        try:
            out, rest = self.process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the command did not end after the signal")
        err = (self.err + rest).decode()
        assert "Traceback" not in err, err
        last = err.replace("\r", "\n").rstrip("\n").rsplit("\n", 1)[-1]
        return self.process.returncode, out.decode(), last

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate()


@pytest.mark.parametrize(
    ("signum", "code", "trace_name"),
    [(signal.SIGINT, 130, "run.jsonl"), (signal.SIGTERM, 143, "run.sqlite")],
)
def test_a_signal_stops_the_run_with_the_summary_so_far_and_a_whole_trace(
    tmp_path: Path, signum: int, code: int, trace_name: str
) -> None:
    command = Command(
        "run", "trade-route", "--duration", "100000", "--progress", "always",
        "--progress-every", "0.2", "--trace", trace_name, cwd=tmp_path,
    )  # fmt: skip
    command.wait_for(b"msg/s")  # the run is under way: virtual time, far from its end
    command.send(signum)
    exit_code, out, last = command.finish()
    assert exit_code == code
    name = signal.Signals(signum).name
    stopped = re.search(r"interrupted at t=([\d,.]+) s of 100,000 s", out)
    assert stopped is not None, out
    at = float(stopped.group(1).replace(",", ""))
    assert 0 < at < 100_000
    assert "expectations not checked: the run was interrupted" in out
    assert last == f"spaceactors: interrupted by {name} at t={stopped.group(1)} s of 100,000 s"
    events = sa.load_trace(tmp_path / trace_name)  # whole: every line an event
    assert events
    assert sa.EventKind.HANDLE in {event.kind for event in events}


@pytest.mark.parametrize(("second", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_ends_the_command_at_once(tmp_path: Path, second: int, code: int) -> None:
    (tmp_path / "slow_stop.py").write_text(STOPPING_SLOWLY)
    command = Command(
        "run", "slow_stop.py", "--clock", "wall", "--trace", "run.jsonl", cwd=tmp_path
    )
    command.wait_for(b"running\n")
    command.send(signal.SIGINT)
    command.wait_for(b"stopping\n")  # its actor takes 30 s to stop: the user will not wait
    sent = time.monotonic()
    command.send(second)
    exit_code, out, last = command.finish()
    assert time.monotonic() - sent < 10
    assert exit_code == code
    assert out == ""
    name = signal.Signals(second).name
    assert last.startswith(f"spaceactors: stopped at once by a second signal ({name})")
    sa.load_trace(tmp_path / "run.jsonl")  # what it holds is whole


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_a_scenario_file_loads_is_one_line(
    tmp_path: Path, signum: int, code: int
) -> None:
    (tmp_path / "slow_load.py").write_text(LOADING_SLOWLY)
    command = Command("run", "slow_load.py", cwd=tmp_path)
    command.wait_for(b"loading\n")
    command.send(signum)
    exit_code, out, last = command.finish()
    assert exit_code == code
    assert out == ""
    name = signal.Signals(signum).name
    assert last == f"spaceactors: interrupted by {name} while loading slow_load.py"


def test_a_signal_while_the_world_is_built_stops_before_the_first_tick(tmp_path: Path) -> None:
    (tmp_path / "slow_build.py").write_text(BUILDING_SLOWLY)
    command = Command("run", "slow_build.py", "--clock", "wall", cwd=tmp_path)
    command.wait_for(b"building\n")
    sent = time.monotonic()
    command.send(signal.SIGINT)
    exit_code, out, last = command.finish()
    assert time.monotonic() - sent < 10  # the build is cancelled, not waited for
    assert exit_code == 130
    assert out.startswith("scenario slow-build: seed 0, interrupted at t=0.0 s of 3,600 s")
    assert "1 stations" in out
    assert last == "spaceactors: interrupted by SIGINT at t=0.0 s of 3,600 s"
