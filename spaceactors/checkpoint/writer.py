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


PIECE = 64
"""A list or dict of more items than this is encoded item by item (`encode`)."""
SPINE = 8
"""How deep `encode` opens the document's small lists and dicts on the way to large ones."""


def encode(doc: dict[str, Any]) -> bytes:
    """A checkpoint (plain data) as the bytes a state file holds: exactly
    ``msgpack.packb(doc, use_bin_type=True)``, made in pieces.

    msgpack packs a value in one call that holds the GIL throughout (some 200-400 ms for a
    10,000-ship checkpoint): made by the writer thread, that would stop the run as long.
    So a list or dict of more than `PIECE` items is packed as its header and then `PIECE`
    items at a time, and the small ones on the way to it (the document's spine: its parts,
    the world's attributes, down to `SPINE` levels) are opened too, so that the run's thread
    gets the GIL back between two pieces.
    """
    packer = msgpack.Packer(use_bin_type=True)
    pieces: list[bytes] = []
    todo: list[tuple[object, int]] = [(doc, 0)]  # (value, its depth on the spine, or -1)
    while todo:  # a loop, not recursion: any depth of nesting
        value, depth = todo.pop()
        kind = type(value)
        if (kind is not list and kind is not dict) or (
            not _large(value) and not 0 <= depth < SPINE
        ):
            pieces.append(packer.pack(value))
            continue
        n = len(value)  # type: ignore[arg-type]
        if not _large(value):  # on the spine: open it, item by item
            below = depth + 1
            if kind is list:
                pieces.append(packer.pack_array_header(n))
                todo.extend((item, below) for item in reversed(value))  # type: ignore[call-overload]
            else:
                pieces.append(packer.pack_map_header(n))
                for key, item in reversed(value.items()):  # type: ignore[attr-defined]
                    todo += ((item, below), (key, -1))
            continue
        # A large one: its header, then runs of small items packed together (a run packed as
        # a list or dict of its own, less that one's header), a large item opened on its own.
        parts: list[tuple[object, int]] = []
        if kind is list:
            pieces.append(packer.pack_array_header(n))
            items: list[Any] = value  # type: ignore[assignment]
            start = 0
            for index, item in enumerate(items):
                if _large(item) or index - start == PIECE:
                    if index > start:
                        parts.append((_Run(items[start:index]), -1))
                    start = index
                    if _large(item):
                        parts.append((item, -1))
                        start = index + 1
            if start < n:
                parts.append((_Run(items[start:]), -1))
        else:
            pieces.append(packer.pack_map_header(n))
            run: dict[Any, Any] = {}
            for key, item in value.items():  # type: ignore[attr-defined]
                if _large(item):
                    if run:
                        parts.append((_Run(run), -1))
                        run = {}
                    parts += ((key, -1), (item, -1))
                    continue
                run[key] = item
                if len(run) == PIECE:
                    parts.append((_Run(run), -1))
                    run = {}
            if run:
                parts.append((_Run(run), -1))
        todo.extend(reversed(parts))
        while todo and type(todo[-1][0]) is _Run:
            chunk = todo.pop()[0].items  # type: ignore[attr-defined]
            header = (
                packer.pack_array_header(len(chunk))
                if type(chunk) is list
                else packer.pack_map_header(len(chunk))
            )
            pieces.append(packer.pack(chunk)[len(header) :])
    return b"".join(pieces)


class _Run:
    """Consecutive small items of a large list or dict, packed in one piece."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any] | dict[Any, Any]) -> None:
        self.items = items


def _large(value: object) -> bool:
    kind = type(value)
    return (kind is list or kind is dict) and len(value) > PIECE  # type: ignore[arg-type]


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
