"""The trace hash: a SHA-256 chain over fixed blocks of events, whose state is plain data.

Each event is one line, its JSON (`TraceEvent.to_json`) and a newline. The chain starts at 32
zero bytes, ``h = bytes(32)``; every `HASH_BLOCK` lines it takes ``h = sha256(h || the block's
lines)``; the hash of the trace is ``sha256(h || the lines since the last block)``, in hex. The
blocks fall where they fall in the event count, never where a checkpoint is taken, so a trace
resumed from its state (`ChainHash.state`: the count, ``h`` and the pending lines) continues
to the same hash as the one that never stopped. (Version 1 of the trace format hashed all
lines in one SHA-256; version 2 defines this chain.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from spaceactors.checks import short_repr
from spaceactors.trace_event import TraceEvent

HASH_BLOCK = 1024
"""How many event lines the trace hash folds into its chain at a time."""
CHAIN_START = bytes(32)
"""The chain's value before any block (32 zero bytes)."""


class ChainHash:
    """The running trace hash of a sequence of event lines (`add`), resumable (`state`)."""

    __slots__ = ("chain", "count", "pending")

    def __init__(self) -> None:
        self.count = 0
        """How many lines were added."""
        self.chain = CHAIN_START
        """The chain value after the last whole block."""
        self.pending: list[str] = []
        """The lines after the last whole block (fewer than `HASH_BLOCK`)."""

    def add(self, line: str) -> None:
        """Fold in one event's line (its JSON, without the newline)."""
        self.count += 1
        pending = self.pending
        pending.append(line)
        if len(pending) == HASH_BLOCK:
            self.chain = _fold(self.chain, pending)
            self.pending = []

    def hexdigest(self) -> str:
        """The trace hash of the lines so far (64 hex digits)."""
        return hashlib.sha256(self.chain + _joined(self.pending)).hexdigest()

    def state(self) -> dict[str, object]:
        """Plain data to continue from: ``{"count": int, "chain": bytes, "pending": [str]}``."""
        return {"count": self.count, "chain": self.chain, "pending": list(self.pending)}

    @classmethod
    def restored(cls, state: object) -> ChainHash:
        """The hash `state` (from `state`) describes.

        Raises:
            ValueError: `state` is not such a dict (the message names the field); the pending
                lines are not checked as events here (`Trace.restore` does).
        """
        if not isinstance(state, dict):
            raise ValueError(f"the hash state must be a dict, got {short_repr(state)}")
        count, chain, pending = state.get("count"), state.get("chain"), state.get("pending")
        if type(count) is not int or count < 0:
            raise ValueError(f"the hash state's count must be an int >= 0, got {short_repr(count)}")
        if not isinstance(chain, bytes) or len(chain) != len(CHAIN_START):
            raise ValueError(
                f"the hash state's chain must be {len(CHAIN_START)} bytes, got {short_repr(chain)}"
            )
        if not isinstance(pending, list) or not all(isinstance(line, str) for line in pending):
            raise ValueError(
                f"the hash state's pending lines must be a list of str, got {short_repr(pending)}"
            )
        if len(pending) != count % HASH_BLOCK:
            raise ValueError(
                f"the hash state holds {len(pending)} pending lines, but {count} events leave "
                f"{count % HASH_BLOCK} after the last block of {HASH_BLOCK}"
            )
        if count < HASH_BLOCK and chain != CHAIN_START:
            raise ValueError(
                f"the hash state's chain must be the start value before {HASH_BLOCK} events "
                f"(it has {count})"
            )
        restored = cls()
        restored.count, restored.chain, restored.pending = count, chain, list(pending)
        return restored


def _joined(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass")


def _fold(chain: bytes, lines: list[str]) -> bytes:
    return hashlib.sha256(chain + _joined(lines)).digest()


def trace_hash(events: Iterable[TraceEvent]) -> str:
    """The trace hash (64 hex digits) of `events` as a trace records them (`Trace.hash`): equal
    traces, equal hashes. See the module for its definition.

    Raises:
        ValueError: `events` is not an iterable of `TraceEvent`.
    """
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        raise ValueError(f"events must be an iterable of TraceEvent, got {short_repr(events)}")
    chain = ChainHash()
    for event in events:
        if not isinstance(event, TraceEvent):
            raise ValueError(f"events must hold TraceEvent only, got {short_repr(event)}")
        chain.add(event.to_json())
    return chain.hexdigest()
