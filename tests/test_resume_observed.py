"""Reading a run does not change it: the observation server's own Trio run draws nothing from
the seeded scheduler, so a seeded run with ``--observe`` is the same run however often it is
read while it goes. A run resumes with or without an observer, whichever it was checkpointed
with (the observation service's tasks take no part in a checkpoint's task order), and with the
same setting it ends as the run it continues."""

from __future__ import annotations

import io
import shutil
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from spaceactors.cli import main

RUN = ["run", "trade-route", "--duration", "3000", "--checkpoint-every", "600"]
OBSERVE = ["--observe", "127.0.0.1:0"]
TIMEOUT = 30.0


def cli(*argv: str | Path, err: io.StringIO | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err or io.StringIO())
    return code, out.getvalue()


def trace_hash(out: str) -> str:
    (line,) = [line for line in out.splitlines() if "trace hash" in line]
    return line.split()[-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, tuple[Path, str]]:
    """The run, unobserved and observed, each keeping every checkpoint."""
    folder = tmp_path_factory.mktemp("observed")
    made = {}
    for observed in (False, True):
        state = folder / f"observed-{observed}.db"
        argv = [*RUN, "--state", state, "--keep-checkpoints", "9"]
        code, out = cli(*argv, *(OBSERVE if observed else []))
        assert code == 0
        made[observed] = (state, trace_hash(out))
    return made


@pytest.mark.parametrize("observed", [False, True])
@pytest.mark.parametrize("observe", [False, True])
def test_a_run_resumes_with_or_without_an_observer(
    runs: dict[bool, tuple[Path, str]], tmp_path: Path, observed: bool, observe: bool
) -> None:
    state = tmp_path / "copy.db"
    shutil.copyfile(runs[observed][0], state)
    with sqlite3.connect(state) as db:  # as if killed after the checkpoint at 1,200 s
        db.execute("DELETE FROM checkpoints WHERE sim_time > 1200")
    db.close()
    code, resumed = cli("resume", state, *(OBSERVE if observe else []))
    assert code == 0
    if observe == observed:  # the same run: it ends as the run it continues
        assert trace_hash(resumed) == runs[observed][1]


class _Reads(io.StringIO):
    """The command's stderr: once it says where it observes, read ``/status`` until told to
    stop (a real server and real requests: bounded)."""

    def __init__(self) -> None:
        super().__init__()
        self.url: str | None = None
        self.reads = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def write(self, text: str) -> int:
        if "observing at " in text and self.url is None:
            self.url = text.split("observing at ")[1].strip()
            self.thread.start()
        return super().write(text)

    def _poll(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/status", timeout=5) as answer:
                    answer.read()
                self.reads += 1
            except OSError:
                pass
            self.stop.wait(0.002)


def test_reads_while_it_runs_do_not_change_the_run(tmp_path: Path) -> None:
    argv = ["run", "trade-route", "--duration", "40000", "--progress", "never", *OBSERVE]
    code, quiet = cli(*argv, "--trace", tmp_path / "quiet.jsonl")
    assert code == 0
    reads = _Reads()
    try:
        code, read = cli(*argv, "--trace", tmp_path / "read.jsonl", err=reads)
    finally:
        reads.stop.set()
    assert code == 0
    assert reads.reads > 0  # it was read while it ran
    assert trace_hash(read) == trace_hash(quiet)
