"""Writing checkpoints to a state file beside the run: encoded and written by a thread of its
own, so that the run's pause for a checkpoint is only the capture.

The thread is a plain thread, not a Trio task: a task would take its place in the seeded
schedule, and the run with checkpoints would no longer be the run without them. At most one
checkpoint waits while another is written; a third waits for room (a disk slower than the run
slows the run rather than filling memory). A checkpoint's encoding is msgpack (no pickle):
`encode` and `decode`.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import msgpack

from spaceactors.checkpoint.collector import collector_paused
from spaceactors.checkpoint.store import StateFile
from spaceactors.errors import StateFileError

_DONE = object()


def encode(doc: dict[str, Any]) -> bytes:
    """A checkpoint (plain data) as the bytes a state file holds."""
    return msgpack.packb(doc, use_bin_type=True)  # type: ignore[no-any-return]


def decode(payload: bytes, where: str) -> dict[str, Any]:
    """The checkpoint in `payload` (from `encode`).

    Raises:
        StateFileError: `payload` is not one (`where` names it in the message).
    """
    try:
        with collector_paused():
            doc = msgpack.unpackb(payload, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise StateFileError(f"{where}: not a checkpoint this spaceactors reads ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("time"), float):
        raise StateFileError(f"{where}: not a checkpoint this spaceactors reads")
    return doc


class StateWriter:
    """Writes each checkpoint `put` to the state file at `path` (opened for writing), in a
    thread of its own; `close` waits for the last one.

    Raises:
        StateFileError: the file cannot be opened for writing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        StateFile.open(path, writable=True).close()  # refused here, before the run starts
        self.written = 0
        self.error: Exception | None = None
        """What the last write raised (`put` and `close` raise it)."""
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="spaceactors state writer")
        self._thread.daemon = True
        self._thread.start()

    def put(self, doc: dict[str, Any]) -> None:
        """Hand a checkpoint to the writer (waits while another one is still waiting).

        Raises:
            StateFileError: an earlier write failed (no more are written).
        """
        if self.error is not None:
            raise self.error
        self._queue.put(doc)

    def close(self) -> None:
        """Write what is left and stop the thread.

        Raises:
            StateFileError: a write failed.
        """
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        state: StateFile | None = None
        try:
            state = StateFile.open(self.path, writable=True)
            while (doc := self._queue.get()) is not _DONE:
                assert isinstance(doc, dict)
                state.write_checkpoint(doc["time"], int(doc.get("trace_count", 0)), encode(doc))
                self.written += 1
        except Exception as exc:  # reported by put/close; the run is stopped by its caller
            self.error = (
                exc
                if isinstance(exc, StateFileError)
                else StateFileError(f"{self.path}: cannot write a checkpoint: {exc}")
            )
            while self._queue.get() is not _DONE:  # let put() callers through to see it
                pass
        finally:
            if state is not None:
                state.close()
