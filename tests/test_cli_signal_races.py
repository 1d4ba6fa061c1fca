"""Signals at awkward moments: while the command starts, two close together, and a scenario
that raises `KeyboardInterrupt` itself. Always one line on stderr and the right exit code.

Real subprocesses and real signals, each wait bounded. The command is started through its
console script's entry point (`spaceactors_command`), which handles signals before the package
imports.
"""

from __future__ import annotations

import importlib.metadata
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMEOUT = 60.0
ENTRY = "import sys, spaceactors_command; sys.exit(spaceactors_command.main())"


def _start(*argv: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _handles_sigterm(pid: int) -> bool:
    """The process caught SIGTERM (its entry point's handler is in place), from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _wait_until_handled(process: subprocess.Popen[bytes]) -> None:
    """Python itself takes a few ms to start: before its first line runs, a signal ends it
    the way it ends any process. Wait until the entry point handles signals."""
    deadline = time.monotonic() + TIMEOUT
    while not _handles_sigterm(process.pid):
        assert process.poll() is None, "the command ended before handling signals"
        assert time.monotonic() < deadline, "the command never installed its handlers"
        time.sleep(0.001)


def _finish(process: subprocess.Popen[bytes]) -> tuple[int, str, list[str]]:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the command did not end after the signal")
    lines = err.decode().replace("\r", "\n").splitlines()
    lines = [line for line in lines if line.strip()]
    return process.returncode, out.decode(), lines


def test_the_console_script_is_the_entry_point_that_handles_signals_first() -> None:
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="spaceactors")
    assert script.value == "spaceactors_command:main"
    import spaceactors_command

    text = Path(spaceactors_command.__file__).read_text()
    first_project_import = text.index("from spaceactors")
    assert text.index("_handle(interrupts.raise_now)") < first_project_import


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.1, 0.2, 0.35, 0.5])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_command_starts_is_one_line(
    tmp_path: Path, delay: float, signum: int, code: int
) -> None:
    process = _start("run", "large-fleet", "--progress", "never", cwd=tmp_path)
    _wait_until_handled(process)
    time.sleep(delay)
    process.send_signal(signum)
    exit_code, out, lines = _finish(process)
    assert exit_code == code, lines
    assert len(lines) == 1, lines
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"spaceactors: interrupted by {name}"), lines
    assert "Traceback" not in lines[0]
    if "interrupted at t=" not in out:
        assert out == ""


@pytest.mark.parametrize("gap", [0.0, 0.0005, 0.01])
@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)],
)
def test_two_signals_close_together_end_with_the_last_ones_code(
    tmp_path: Path, gap: float, first: int, second: int
) -> None:
    process = _start("run", "trade-route", "--duration", "1e7", "--progress", "always",
                     "--progress-every", "0.01", cwd=tmp_path)  # fmt: skip
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    while b"msg/s" not in seen:  # the run is under way
        assert time.monotonic() < deadline, seen[-300:]
        assert process.poll() is None, seen[-300:]
        seen += process.stderr.read1(4096)  # type: ignore[attr-defined]
    process.send_signal(first)
    time.sleep(gap)
    process.send_signal(second)
    exit_code, _, lines = _finish(process)
    lines = [line for line in (seen.decode().replace("\r", "\n").splitlines() + lines)
             if line.strip() and "msg/s" not in line
             and not line.startswith("WARNING spaceactors.")]  # fmt: skip (the restart line)
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0], lines
    assert "error" not in lines[0], lines
    # Both signals were seen (the exit code is the second's), or the command had already
    # ended when the second came (then it is the first's, and the line names only the first).
    # (Two signals pending at once reach Python lowest number first: SIGINT before SIGTERM.)
    names = re.findall(r"SIGINT|SIGTERM", lines[0])
    assert 1 <= len(names) <= 2, lines
    assert exit_code == 128 + signal.Signals[names[-1]], lines


KEYBOARD_INTERRUPT_IN_RUN = """
from spaceactors import sim

@sim.scenario(duration=60.0)
async def raises(world):
    raise KeyboardInterrupt
"""

KEYBOARD_INTERRUPT_IN_AN_EVENT = """
from spaceactors import sim

def boom():
    raise KeyboardInterrupt

@sim.scenario(duration=60.0)
async def later(world):
    await world.add_station("a", (0, 0, 0), sector="x")
    world.at(10.0, boom)
"""


@pytest.mark.parametrize("source", [KEYBOARD_INTERRUPT_IN_RUN, KEYBOARD_INTERRUPT_IN_AN_EVENT])
def test_a_scenario_that_raises_keyboard_interrupt_is_broken_not_ctrl_c(
    tmp_path: Path, source: str
) -> None:
    (tmp_path / "ki.py").write_text(source)
    process = _start("run", "ki.py", cwd=tmp_path)
    exit_code, out, lines = _finish(process)
    assert exit_code == 2, lines
    assert lines == [
        "spaceactors: error: ki.py: the scenario raised KeyboardInterrupt while running "
        "(no signal was sent)"
    ]
    assert out == ""


FAILS_WHEN_STOPPED = """
import sys
import trio
from spaceactors import sim

@sim.scenario(duration=3600)
async def fragile(world):
    await world.add_station("a", (0, 0, 0), sector="x")
    print("building", file=sys.stderr, flush=True)
    try:
        await trio.sleep(30)
    except trio.Cancelled:
        raise RuntimeError("cleanup failed") from None
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_error_after_a_signal_is_reported_as_the_interruption(
    tmp_path: Path, signum: int, code: int
) -> None:
    (tmp_path / "fragile.py").write_text(FAILS_WHEN_STOPPED)
    process = _start("run", "fragile.py", "--clock", "wall", cwd=tmp_path)
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    while b"building\n" not in seen:
        assert time.monotonic() < deadline, seen[-300:]
        assert process.poll() is None, seen[-300:]
        seen += process.stderr.read1(4096)  # type: ignore[attr-defined]
    process.send_signal(signum)
    exit_code, out, lines = _finish(process)
    assert exit_code == code, lines
    assert len(lines) == 1, lines
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"spaceactors: interrupted by {name} while stopping the run (then:")
    assert lines[0].endswith("RuntimeError: cleanup failed)")
    assert out == ""
