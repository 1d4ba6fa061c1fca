"""Checkpoints taken in a child process: the run stops only as long as ``fork`` takes.

At the quiescent point the run's process forks (as Redis's ``BGSAVE`` does). The child holds a
copy-on-write image of the run at that instant: it captures the run's state from it, encodes
it and writes it to the state file, reports how that went through a pipe, and exits. The run
goes on at once; for the 10,000-ship fleet the pause is a few milliseconds instead of the
capture's second (benchmarks/checkpoint.py).

One child at a time: the next checkpoint first waits for the previous child (a disk slower
than the run slows the run, as `spaceactors.checkpoint.writer` does) and raises what went
wrong in it, so a checkpoint that failed stops the run at the next one, deterministically, or
at `ForkedWriter.close`. The child touches nothing the run shares: no Trio, no signal
wake-up, a connection to the state file of its own under the writer's lock it inherited
(`StateFile.forked`: never another file put at the path meanwhile); it ignores SIGINT and
SIGTERM (a Ctrl-C, or a service manager's stop, reaches the whole process group: the run stops
and waits for it), and dies with the run (``PR_SET_PDEATHSIG``: a ``kill -9`` of the run
leaves the previous checkpoint whole and the file free for ``resume`` at once). It leaves by
``os._exit``: nothing of the run's (``atexit``, buffered output) runs twice.

Linux only (`FORKS`): elsewhere, and where a process cannot fork, the command writes
checkpoints from a thread (`spaceactors.checkpoint.writer.StateWriter`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import attrs

from spaceactors.checkpoint.store import StateFile
from spaceactors.checkpoint.writer import encode
from spaceactors.errors import CheckpointError, StateFileError

FORKS = sys.platform == "linux" and hasattr(os, "fork")
"""Checkpoints can be taken in a child process here."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@attrs.frozen
class Written:
    """How one child wrote its checkpoint: seconds of its own wall clock for each step."""

    sim_time: float
    capture: float
    encode: float
    write: float
    size: int
    """Bytes of the encoded checkpoint."""


class ForkedWriter:
    """Writes each checkpoint to the state file at `path` from a child process (`take`);
    `close` waits for the last one and gives the file up.

    The file is open for writing, and so held against other writers, from here to `close`.

    Raises:
        StateFileError: the file cannot be opened for writing.
    """

    def __init__(self, path: str | os.PathLike[str], *, wait_first: bool = False) -> None:
        self.path = path
        self.wait_first = wait_first
        """Wait for the first checkpoint's child at once (`take` raises what went wrong in
        it): a new run's checkpoint at t=0 names what cannot be saved before the run goes
        on."""
        self.written: list[Written] = []
        """Each checkpoint a child wrote, in order (known once the next one is taken, or
        after `close`)."""
        self._state: StateFile | None = StateFile.open(path, writable=True)
        self._child: tuple[int, int, float] | None = None  # pid, its pipe's read end, sim_time

    @property
    def child(self) -> int | None:
        """The process id of the child of the last checkpoint, until the next `take` or
        `close` waits for it (None: no child)."""
        return None if self._child is None else self._child[0]

    def take(self, capture: Callable[[], dict[str, Any]], sim_time: float) -> None:
        """Fork; the child writes ``capture()`` (the run's state at `sim_time`, virtual
        seconds) to the file. Call it at a quiescent point where `capture` can run; it first
        waits for the previous child.

        Raises:
            CheckpointError: the previous checkpoint could not be captured (it names what).
            StateFileError: the previous one could not be written, or this process cannot
                fork, or the writer is closed.
        """
        self._reap()
        state = self._state
        if state is None:
            raise StateFileError(f"{self.path}: the checkpoint writer is closed")
        read, write = os.pipe()
        parent = os.getpid()  # before: the child may start after the run has died
        try:
            with warnings.catch_warnings():  # Python 3.12+ warns of threads (an observer's):
                # the child touches no lock of theirs (no logging, no Trio, no shared file)
                warnings.filterwarnings("ignore", ".*multi-threaded.*", DeprecationWarning)
                pid = os.fork()
        except OSError as exc:
            os.close(read)
            os.close(write)
            raise StateFileError(
                f"{self.path}: cannot fork a process to write the checkpoint at t={sim_time:g} "
                f"({exc.strerror or exc}): free memory or processes, or run with fewer actors"
            ) from None
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(state, capture, sim_time, write, parent=parent)
        os.close(write)
        self._child = (pid, read, sim_time)
        if self.wait_first and not self.written:
            self._reap()

    def close(self) -> None:
        """Wait for the last child, then give the file up (idempotent).

        Raises:
            CheckpointError, StateFileError: the last checkpoint failed (as `take`).
        """
        try:
            self._reap()
        finally:
            if self._state is not None:
                self._state.close()
                self._state = None

    def _reap(self) -> None:
        if self._child is None:
            return
        pid, read, sim_time = self._child
        self._child = None
        try:
            chunks = []
            while chunk := os.read(read, 65536):
                chunks.append(chunk)
        finally:
            os.close(read)
        _, status = os.waitpid(pid, 0)
        where = f"{self.path}: the checkpoint at t={sim_time:g}"
        try:
            report = json.loads(b"".join(chunks)) if chunks else None
        except ValueError:
            report = None
        if isinstance(report, dict) and "error" in report:
            kind = CheckpointError if report.get("kind") == "CheckpointError" else StateFileError
            raise kind(str(report["error"]))
        if not isinstance(report, dict) or os.waitstatus_to_exitcode(status) != 0:
            code = os.waitstatus_to_exitcode(status)
            how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with {code}"
            raise StateFileError(
                f"{where} was not written: its writer process {how}; the previous checkpoint "
                "is intact"
            )
        self.written.append(Written(**report))


def _child(
    state: StateFile,
    capture: Callable[[], dict[str, Any]],
    sim_time: float,
    pipe: int,
    *,
    parent: int,
) -> None:
    """In the forked child: write the checkpoint, report through `pipe`, exit."""
    code = 1
    report: dict[str, Any]
    try:
        _detach_from_run(parent)
        gc.disable()  # the child exits in a moment: nothing to collect
        started = time.perf_counter()
        doc = capture()
        captured = time.perf_counter()
        payload = encode(doc)
        encoded = time.perf_counter()
        with state.forked() as mine:
            mine.write_checkpoint(doc["time"], int(doc.get("trace_count", 0)), payload)
        report = {
            "sim_time": sim_time,
            "capture": captured - started,
            "encode": encoded - captured,
            "write": time.perf_counter() - encoded,
            "size": len(payload),
        }
        code = 0
    except CheckpointError as exc:
        report = {"kind": "CheckpointError", "error": str(exc)}
    except StateFileError as exc:
        report = {"kind": "StateFileError", "error": str(exc)}
    except BaseException as exc:  # a bug: said in the parent, as a failed write
        report = {
            "kind": "StateFileError",
            "error": f"{state.path}: cannot write the checkpoint at t={sim_time:g}: "
            f"{type(exc).__name__}: {exc}",
        }
    finally:
        with contextlib.suppress(BaseException):
            _write_all(pipe, json.dumps(report).encode())
        os._exit(code)


def _detach_from_run(parent: int) -> None:
    """The child leaves the run's signals alone and dies with it."""
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)  # Trio's: a signal here must not wake the run's loop
    for signum in (signal.SIGINT, signal.SIGTERM):  # sent to the group: the run stops, then
        signal.signal(signum, signal.SIG_IGN)  # waits for this checkpoint (systemd, Ctrl-C)
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run died before that: nobody waits for this checkpoint
        os._exit(1)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
