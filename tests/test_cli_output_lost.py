"""stdout or stderr full (/dev/full) or closed: the command ends with one line on stderr (or
silently, when stderr is what is lost), the right exit code, and a run's trace is whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import spaceactors as sa

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")

TIMEOUT = 120.0
ENTRY = "import sys, spaceactors_command; sys.exit(spaceactors_command.main())"


def _run(argv: list[str], cwd: Path, *, stdout: str, stderr: str) -> tuple[int, str]:
    """The command with stdout and stderr each "pipe", "full" (/dev/full) or "closed"."""
    opened = []

    def target(how: str) -> int | None:
        if how == "pipe":
            return subprocess.PIPE
        if how == "full":
            opened.append(os.open("/dev/full", os.O_WRONLY))
            return opened[-1]
        return None

    out_fd, err_fd = target(stdout), target(stderr)

    def close_fds() -> None:  # in the child, before it runs: stdout/stderr closed
        if stdout == "closed":
            os.close(1)
        if stderr == "closed":
            os.close(2)

    try:
        process = subprocess.run(
            [sys.executable, "-c", ENTRY, *argv],
            cwd=cwd,
            stdout=out_fd,
            stderr=err_fd,
            preexec_fn=close_fds,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        for fd in opened:
            os.close(fd)
    return process.returncode, (process.stderr or b"").decode()


@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_list_to_a_lost_stdout_is_one_line_and_exit_2(tmp_path: Path, stdout: str) -> None:
    code, err = _run(["list"], tmp_path, stdout=stdout, stderr="pipe")
    assert code == 2
    why = "No space left on device" if stdout == "full" else "stdout is closed"
    assert err == f"spaceactors: error: cannot write to stdout: {why}\n"


@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_run_to_a_lost_stdout_still_writes_the_whole_trace(tmp_path: Path, stdout: str) -> None:
    argv = ["run", "trade-route", "--duration", "600", "--trace", "run.jsonl"]
    code, err = _run(argv, tmp_path, stdout=stdout, stderr="pipe")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("spaceactors: error: cannot write to stdout: ")
    assert err.endswith("(the trace run.jsonl is complete)\n")
    events = sa.load_trace(tmp_path / "run.jsonl")
    assert max(event.time for event in events) > 500  # the whole run, not a part


@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_demo_to_a_lost_stdout_is_one_line_and_exit_2(tmp_path: Path, stdout: str) -> None:
    code, err = _run(["demo"], tmp_path, stdout=stdout, stderr="pipe")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("spaceactors: error: cannot write to stdout: ")


@pytest.mark.parametrize("stderr", ["full", "closed"])
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list"], 0),
        (["run", "nowhere"], 2),
        (["run", "trade-route", "--duration", "600", "--progress", "always"], 0),
        (["run", "trade-route", "--seed", "-1"], 2),
        (["run", "trade-route", "--trace", "run.csv"], 2),
    ],
)
def test_a_lost_stderr_keeps_the_exit_code(
    tmp_path: Path, stderr: str, argv: list[str], expected: int
) -> None:
    code, _ = _run(argv, tmp_path, stdout="pipe", stderr=stderr)
    assert code == expected
