"""``spaceactors run SCENARIO --nodes N`` as a user meets it: Ctrl-C gives the summary so far
(every share stopped at the same tick), the private redis-server dying ends the run with one
line, and nothing it started is left running. Real processes, real signals, real Redis: each
wait bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.usefixtures("redis_server"),  # (skips, saying why, without a redis-server)
]

TIMEOUT = 120.0
ENTRY = "import sys, spaceactors_command; sys.exit(spaceactors_command.main())"


def _start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, "run", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # as in a terminal: the command leads its own group
    )


def _wait_for_line(process: subprocess.Popen[str], text: str) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if text in line:
            return line
        assert line or process.poll() is None, "the command ended before it ran its shares"
    raise AssertionError(f"no {text!r} line within {TIMEOUT:g} s")


def _processes() -> dict[int, tuple[int, str]]:
    """Every process: its parent and its command line, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode().strip()
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if cmdline:  # (a zombie has none)
            found[int(entry)] = (parent, cmdline)
    return found


def _started_by(pid: int) -> dict[int, str]:
    """The processes `pid` started that run now (its workers, its redis-server)."""
    return {child: cmd for child, (parent, cmd) in _processes().items() if parent == pid}


def _still_running(started: dict[int, str]) -> dict[int, str]:
    now = _processes()
    return {pid: cmd for pid, cmd in started.items() if pid in now and now[pid][1] == cmd}


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, list[str]]:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return process.returncode, out, [line for line in err.splitlines() if line]


@pytest.mark.skipif(not os.path.exists("/proc"), reason="needs /proc")
def test_ctrl_c_stops_every_share_at_one_tick_and_prints_the_summary_so_far() -> None:
    process = _start("trade-route", "--nodes", "2", "--duration", "360000")
    _wait_for_line(process, "running trade-route on 2 nodes")
    time.sleep(1.5)
    started = _started_by(process.pid)
    assert len(started) == 3  # two workers and a redis-server
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole group
    code, out, lines = _finish(process)
    assert code == 130, lines
    assert "interrupted at t=" in out
    assert "expectations not checked" in out
    assert lines[-1].startswith("spaceactors: interrupted by SIGINT at t="), lines
    assert not any("Traceback" in line for line in lines), lines
    deadline = time.monotonic() + 10
    while _still_running(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _still_running(started) == {}  # its workers and its redis-server are gone


@pytest.mark.skipif(not os.path.exists("/proc"), reason="needs /proc")
def test_the_private_redis_server_dying_ends_the_run_with_one_line() -> None:
    process = _start("trade-route", "--nodes", "2", "--duration", "360000")
    _wait_for_line(process, "running trade-route on 2 nodes")
    servers = [pid for pid, cmd in _started_by(process.pid).items() if "redis-server" in cmd]
    assert len(servers) == 1
    os.kill(servers[0], signal.SIGKILL)
    code, _, lines = _finish(process)
    assert code == 2, lines
    assert lines[-1] == (
        "spaceactors: error: the run's private redis-server exited (code -9) while the run "
        "went on; nothing of it is kept: run it again"
    )
