"""``spaceactors run --state`` killed with a real SIGKILL at a random moment, then
``spaceactors resume``: the run ends with the same summary as the run that never stopped."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMAND = [sys.executable, "-m", "spaceactors"]
RUN = ["run", "asteroid-convoy", "--duration", "3000", "--progress", "never"]


def spaceactors(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def kill_after(args: list[str], state: Path, cwd: Path, wait: float) -> None:
    """Run the command with `args`, and SIGKILL it `wait` real seconds after it has made
    its state file `state`."""
    process = subprocess.Popen(
        [*COMMAND, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # a real process: wait for it to create its state file
    time.sleep(wait)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def summary(stdout: str) -> list[str]:
    """The summary without its wall-clock figure (the first line)."""
    return stdout.splitlines()[1:]


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    where = tmp_path_factory.mktemp("whole")
    done = spaceactors(*RUN, "--state", "whole.db", cwd=where)
    assert done.returncode == 0, done.stderr
    return summary(done.stdout)


@pytest.mark.parametrize("trial", range(4))
def test_killed_at_a_random_moment_it_resumes_to_the_same_end(
    trial: int, whole: list[str], tmp_path: Path
) -> None:
    rng = random.Random(trial)
    state = tmp_path / "run.db"
    kill_after(
        [*RUN, "--state", str(state), "--checkpoint-every", "20"], state, tmp_path,
        rng.uniform(0.0, 0.6),
    )  # fmt: skip
    resumed = spaceactors("resume", str(state), "--progress", "never", cwd=tmp_path)
    if resumed.returncode == 2 and "no checkpoint yet" in resumed.stderr:
        return  # killed before its first checkpoint: refused, saying so
    assert resumed.returncode == 0, resumed.stderr
    assert summary(resumed.stdout) == whole


def test_a_damaged_state_file_is_refused_with_one_line(tmp_path: Path) -> None:
    state = tmp_path / "run.db"
    done = spaceactors(*RUN, "--duration", "100", "--state", str(state), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = bytearray(state.read_bytes())
    data[len(data) // 2 :] = bytes(len(data) - len(data) // 2)  # the second half zeroed
    state.write_bytes(bytes(data))
    resumed = spaceactors("resume", str(state), cwd=tmp_path)
    assert resumed.returncode == 2
    assert resumed.stdout == ""
    (line,) = resumed.stderr.splitlines()
    assert line.startswith("spaceactors: error: ")
    assert str(state) in line


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("not a database\n")
    resumed = spaceactors("resume", str(bogus), cwd=tmp_path)
    assert resumed.returncode == 2
    (line,) = resumed.stderr.splitlines()
    assert line.startswith(f"spaceactors: error: {bogus}: not a")


def test_state_options_need_a_state_file(tmp_path: Path) -> None:
    done = spaceactors(*RUN, "--checkpoint-every", "10", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "spaceactors: error: --checkpoint-every needs --state FILE"
