"""The compact encoding of a stretch of trace events (a *segment*), and the sink that cuts them.

A segment is bytes: the magic ``b"SATSEG"``, a version byte (`SEGMENT_VERSION`), then a zlib
stream of one msgpack array, column by column::

    [count, strings, kinds, actors, peers, message_types, message_ids, details, times]

- ``strings``: each distinct text of the segment once (actor and peer names, message types,
  details), in order of first use; the columns refer to it by index;
- ``kinds``: bytes, one per event, its kind's place in `KIND_CODES`;
- ``actors``, ``peers``, ``message_types``: one int per event, 0 for none, else 1 + its
  string's index; ``details``: the string's index; ``message_ids``: 0 for none, else 1 + id;
- ``times``: one int per event, the difference of the bits of its time (a float64) from the
  bits of the time before (0 bits before the first), modulo 2**64, zigzag encoded: events at
  the same time cost one byte, and every time comes back bit for bit.

msgpack writes small ints in one byte; zlib then squeezes the repetition out. A decoded
segment is the events it was encoded from, field for field (`decode_segment`).
"""

from __future__ import annotations

import errno
import math
import struct
import zlib
from collections.abc import Iterable
from typing import Any

import msgpack

from spaceactors.checks import short_repr
from spaceactors.trace_event import MAX_MESSAGE_ID, EventKind, TraceEvent

MAGIC = b"SATSEG"
"""How a segment starts."""
SEGMENT_VERSION = 1
"""The version of the segment layout (the byte after `MAGIC`)."""
MAX_SEGMENT_BODY = 2**30
"""The most bytes a segment may inflate to (a larger one is refused, not inflated)."""
KIND_CODES: tuple[EventKind, ...] = tuple(
    EventKind(value)
    for value in (
        "send", "deliver", "handle", "drop", "duplicate", "delay", "reorder", "dead_letter",
        "crash", "restart", "give_up", "stop", "pause", "resume", "slow", "partition", "heal",
        "fault", "forget", "unmatched", "node_up", "node_down",
    )
)  # fmt: skip
"""The event kinds in the order a segment numbers them (fixed: new kinds go at the end)."""
_CODE_OF = {kind: code for code, kind in enumerate(KIND_CODES)}
_BITS = struct.Struct("<Q")
_FLOAT = struct.Struct("<d")
_MASK = 2**64 - 1
_COLUMNS = (
    "strings", "kinds", "actors", "peers", "message_types", "message_ids", "details", "times",
)  # fmt: skip


class SegmentWriter:
    """Builds one segment event by event (`add`), then encodes it (`finish`); a column of ints
    per field, so a long segment costs a few bytes per event before it is encoded."""

    def __init__(self) -> None:
        self.count = 0
        self._strings: dict[str, int] = {}
        self._kinds = bytearray()
        self._columns: tuple[list[int], ...] = ([], [], [], [], [], [])
        self._bits = 0

    def add(self, event: TraceEvent) -> None:
        """Append `event`.

        Raises:
            ValueError: it is not a `TraceEvent`, or a field is not of its type (a time that
                is not a finite float, a message id outside ``[0, 2**63)``).
        """
        if not isinstance(event, TraceEvent):
            raise ValueError(f"a segment holds TraceEvent only, got {short_repr(event)}")
        time, message_id = event.time, event.message_id
        if type(time) is not float or not math.isfinite(time):
            raise ValueError(f"an event's time must be a finite float, got {short_repr(time)}")
        if message_id is not None and (
            type(message_id) is not int or not 0 <= message_id <= MAX_MESSAGE_ID
        ):
            raise ValueError(f"an event's message_id is out of range: {short_repr(message_id)}")
        if type(event.detail) is not str:
            raise ValueError(f"an event's detail must be a str, got {short_repr(event.detail)}")
        code = _CODE_OF.get(event.kind)
        if code is None:
            raise ValueError(f"an event's kind must be an EventKind, got {short_repr(event.kind)}")
        actors, peers, types, ids, details, times = self._columns
        self._kinds.append(code)
        actors.append(self._optional(event.actor))
        peers.append(self._optional(event.peer))
        types.append(self._optional(event.message_type))
        ids.append(0 if message_id is None else message_id + 1)
        details.append(self._index(event.detail))
        bits = _BITS.unpack(_FLOAT.pack(time))[0]
        delta = (bits - self._bits) & _MASK
        times.append(((delta << 1) ^ -(delta >> 63)) & _MASK)  # zigzag of the signed delta
        self._bits = bits
        self.count += 1

    def _index(self, text: str) -> int:
        index = self._strings.get(text)
        if index is None:
            if type(text) is not str:
                raise ValueError(f"an event's names must be str or None, got {short_repr(text)}")
            index = self._strings[text] = len(self._strings)
        return index

    def _optional(self, text: str | None) -> int:
        return 0 if text is None else self._index(text) + 1

    def finish(self) -> bytes:
        """The segment of the events added so far."""
        body = [self.count, list(self._strings), bytes(self._kinds), *self._columns]
        packed = msgpack.packb(body, use_bin_type=True, unicode_errors="surrogatepass")
        return MAGIC + bytes([SEGMENT_VERSION]) + zlib.compress(packed, 6)


def encode_segment(events: Iterable[TraceEvent]) -> bytes:
    """`events` as one segment (see the module for the layout).

    Raises:
        ValueError: `events` is not an iterable of `TraceEvent`, or an event holds a value
            of the wrong type (see `SegmentWriter.add`).
    """
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        raise ValueError(f"events must be an iterable of TraceEvent, got {short_repr(events)}")
    writer = SegmentWriter()
    for event in events:
        writer.add(event)
    return writer.finish()


def decode_segment(data: bytes) -> list[TraceEvent]:
    """The events of a segment `encode_segment` wrote, field for field.

    Raises:
        ValueError: `data` is not such a segment (not bytes, another magic or version, a
            cut or corrupt zlib stream, a body of the wrong shape, an index out of range, a
            time that is not finite...); the message says what is wrong. Nothing else.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"a trace segment is bytes, got {short_repr(data)}")
    data = bytes(data)
    head = len(MAGIC) + 1
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError(f"not a trace segment: it starts {short_repr(data[:head])}")
    if len(data) < head:
        raise ValueError("a trace segment cut short after its magic (no version byte)")
    if data[len(MAGIC)] != SEGMENT_VERSION:
        version = data[len(MAGIC)]
        raise ValueError(
            f"trace segment version {version} is not {SEGMENT_VERSION}, the one this "
            "spaceactors reads"
        )
    return _events(_unpack(_inflate(data[head:])))


def _inflate(stream: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(stream, MAX_SEGMENT_BODY + 1)
    except zlib.error as exc:
        raise ValueError(f"a corrupt trace segment: {exc}") from None
    if len(body) > MAX_SEGMENT_BODY:
        raise ValueError(f"a trace segment inflating to over {MAX_SEGMENT_BODY:,} bytes")
    if not inflater.eof:
        raise ValueError("a trace segment cut short: its zlib stream does not end")
    if inflater.unused_data:
        raise ValueError(f"a trace segment with {len(inflater.unused_data)} bytes after its end")
    return body


def _unpack(body: bytes) -> list[Any]:
    try:
        value = msgpack.unpackb(
            body, raw=False, strict_map_key=True, unicode_errors="surrogatepass"
        )
    except Exception as exc:  # msgpack raises several kinds (ExtraData, FormatError, ...)
        raise ValueError(f"a trace segment's body is not msgpack: {exc}") from None
    if not isinstance(value, list) or len(value) != 1 + len(_COLUMNS):
        raise ValueError(
            f"a trace segment's body must be an array of {1 + len(_COLUMNS)}, got "
            f"{short_repr(value)}"
        )
    return value


def _events(body: list[Any]) -> list[TraceEvent]:
    count, strings, kinds, *columns = body
    if type(count) is not int or count < 0:
        raise ValueError(f"a trace segment's count must be an int >= 0, got {short_repr(count)}")
    if not isinstance(strings, list) or not all(type(text) is str for text in strings):
        raise ValueError("a trace segment's strings must be an array of str")
    if not isinstance(kinds, bytes) or len(kinds) != count:
        raise ValueError(f"a trace segment's kinds must be {count} bytes, got {short_repr(kinds)}")
    if max(kinds, default=0) >= len(KIND_CODES):
        raise ValueError(
            f"a trace segment names kind {max(kinds)} (the kinds are 0 to {len(KIND_CODES) - 1})"
        )
    limits = (len(strings) + 1,) * 3 + (MAX_MESSAGE_ID + 2, len(strings), 2**64)
    for name, column, limit in zip(_COLUMNS[2:], columns, limits, strict=True):
        _check_column(name, column, count, limit)
    actors, peers, types, ids, details, times = columns
    texts: list[str | None] = [None, *strings]
    events = []
    bits = 0
    for n in range(count):
        bits = (bits + ((times[n] >> 1) ^ -(times[n] & 1))) & _MASK
        time = _FLOAT.unpack(_BITS.pack(bits))[0]
        if not math.isfinite(time):
            raise ValueError(f"a trace segment's event {n} has the time {time}")
        message_id = ids[n]
        events.append(
            TraceEvent(
                time,
                KIND_CODES[kinds[n]],
                texts[actors[n]],
                texts[peers[n]],
                texts[types[n]],
                None if message_id == 0 else message_id - 1,
                strings[details[n]],
            )
        )
    return events


def _check_column(name: str, column: object, count: int, limit: int) -> None:
    if not isinstance(column, list) or len(column) != count:
        raise ValueError(
            f"a trace segment's {name} must be an array of {count} ints, got {short_repr(column)}"
        )
    if not all(type(value) is int for value in column):
        raise ValueError(f"a trace segment's {name} must hold ints only")
    if column and (min(column) < 0 or max(column) >= limit):
        raise ValueError(f"a trace segment's {name} holds an index out of range [0, {limit})")


class SegmentSink:
    """A trace sink that keeps the events since the last `cut`, compactly (`SegmentWriter`),
    and hands them over as a segment at each `cut` (a checkpoint stores it).

    Args:
        first_index: the place in the trace of the first event it will get (0 for a new
            trace; a resumed trace's count).
    """

    def __init__(self, first_index: int = 0) -> None:
        if type(first_index) is not int or first_index < 0:
            raise ValueError(f"first_index must be an int >= 0, got {short_repr(first_index)}")
        self.first_index = first_index
        """The place in the trace of the first event of the segment being built."""
        self._writer = SegmentWriter()

    def write(self, event: TraceEvent, line: str) -> None:
        """Keep `event` for the next segment.

        Raises:
            OSError: (``EINVAL``) the event cannot be encoded (a field of the wrong type); the
                trace then stops writing to this sink, as for a full disk.
        """
        try:
            self._writer.add(event)
        except ValueError as exc:
            raise OSError(errno.EINVAL, f"cannot encode a trace event: {exc}") from None

    def cut(self) -> tuple[int, int, bytes]:
        """The segment since the last cut: ``(first_index, count, bytes)``, the place of its
        first event in the trace, how many events it holds (maybe 0), and `encode_segment`'s
        bytes of them. The next segment starts after them."""
        writer, self._writer = self._writer, SegmentWriter()
        first, self.first_index = self.first_index, self.first_index + writer.count
        return first, writer.count, writer.finish()

    def close(self) -> None:
        """Nothing to flush: what was not cut is dropped with the sink (cut first)."""
