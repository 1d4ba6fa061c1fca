"""The envelope every stream entry carries, and the name directory's holder records.

An envelope is a msgpack array ``[WIRE, kind, source, corr, target_id, target_name, sender,
payload, tick]``: `payload` is the message in the codec's msgpack format (its own envelope carries
the message schema version). Everything read from a broker is decoded here, strictly: a
malformed or hostile entry raises `DecodeError` saying what was wrong, never anything else.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs
import msgpack

from spaceactors.checks import short_repr
from spaceactors.codec import Codec
from spaceactors.errors import (
    ActorCrashed,
    ActorNotFound,
    ActorUnavailable,
    DecodeError,
    EncodeError,
    InvalidSpec,
    NameTaken,
    StartFailed,
)

WIRE = 1
"""The envelope's version; an entry of another version is refused (`DecodeError`)."""

MAX_ENTRY = 16 * 1024 * 1024
"""The largest entry, in bytes, a node accepts."""


class Kind(enum.IntEnum):
    """What an envelope asks of the node that reads it."""

    TELL = 0
    """Put `payload` in the target's mailbox."""
    ASK = 1
    """Put `payload` in the mailbox as a request; the answer goes back as REPLY or FAIL."""
    REPLY = 2
    """The answer to the ASK numbered `corr`."""
    FAIL = 3
    """The ASK numbered `corr` failed: `payload` is ``[error class name, message]``."""
    STOP = 4
    """Stop the target for good; answered by REPLY (payload empty) or FAIL."""
    STATUS = 5
    """Answer the target's status (REPLY with an `ActorStatus`)."""
    CREDIT = 6
    """The reader of the source's entries grants `corr` more (the credit window)."""
    NAME = 7
    """A name was registered (`payload`: its holder) or released (empty) cluster-wide."""
    BROADCAST = 8
    """A broadcast from another node: hand `payload` to every actor here."""
    PUBLISH = 9
    """A publish from another node to the topic `target_name`: hand `payload` to the
    subscribers here."""
    SPAWN = 10
    """Start the actor `target_name` here (`payload`: its class and arguments); answered by
    REPLY or FAIL (`spaceactors.transport.children`)."""
    RELIABLE = 11
    """A reliable message for the target (`spaceactors.transport.reliably`)."""
    ACK = 12
    """The acknowledgement of a reliable stream the source receives."""
    SKIP = 13
    """The sender gave up on a number of a reliable stream to the target."""
    SUBSCRIBE = 14
    """The source's actor `target_name` subscribed to a topic or unsubscribed
    (`spaceactors.transport.subscriptions`)."""


@attrs.frozen
class Envelope:
    """One decoded entry (see the module docstring for the fields)."""

    kind: Kind
    source: str
    corr: int = 0
    target_id: int = 0
    target_name: str = ""
    sender: str | None = None
    payload: bytes = b""
    tick: int = 0
    """The world tick its sender was in, in a sharded run (delivered after that tick)."""

    def encode(self) -> bytes:
        """The entry's bytes."""
        return packb(
            [
                WIRE,
                int(self.kind),
                self.source,
                self.corr,
                self.target_id,
                self.target_name,
                self.sender,
                self.payload,
                self.tick,
            ]
        )


_KINDS = {int(kind): kind for kind in Kind}
_BARE = {int(Kind.STOP), int(Kind.STATUS), int(Kind.CREDIT)}  # never with a payload
_LOADED = {  # always with one
    int(Kind.TELL),
    int(Kind.ASK),
    int(Kind.REPLY),
    int(Kind.FAIL),
    int(Kind.BROADCAST),
    int(Kind.PUBLISH),
    int(Kind.SPAWN),
    int(Kind.RELIABLE),
    int(Kind.ACK),
    int(Kind.SKIP),
    int(Kind.SUBSCRIBE),
}


_NEWS_CODES = frozenset(
    int(kind)
    for kind in (
        Kind.REPLY,
        Kind.FAIL,
        Kind.CREDIT,
        Kind.NAME,
        Kind.ACK,
        Kind.SKIP,
        Kind.SUBSCRIBE,
        Kind.STATUS,
        Kind.STOP,
        Kind.SPAWN,
    )
)


def is_news(data: bytes) -> bool:
    """Whether an entry tells its node something rather than carrying a message for an
    actor's mailbox (a reply, a credit, a name, an acknowledgement, a skip, a subscription;
    a status request, a stop or a spawn, which no mailbox holds back): read from its first
    bytes (msgpack: a 9-array, version 1, then the kind), without decoding it.

    A node handles news as soon as it reads it, ahead of messages waiting for room in a
    mailbox (none of it waits; behind a slow actor it would stall other nodes, or come too
    late); and news to a node that has gone (its inbox deleted) is dropped, not kept in an
    inbox nobody reads.
    """
    return len(data) > 2 and data[0] == 0x99 and data[1] == WIRE and data[2] in _NEWS_CODES


def source_of(data: bytes) -> str:
    """The source node of an entry, read from its first bytes ("" if they are not an
    envelope's: the entry is malformed, and its dispatch says so)."""
    if len(data) < 4 or data[0] != 0x99 or data[1] != WIRE:
        return ""
    head = data[3]
    if 0xA0 <= head <= 0xBF:  # fixstr
        start, length = 4, head & 0x1F
    elif head == 0xD9 and len(data) > 4:  # str 8
        start, length = 5, data[4]
    else:
        return ""
    try:
        return bytes(data[start : start + length]).decode()
    except UnicodeDecodeError:
        return ""


def packb(value: object, *, strict: bool = True) -> bytes:
    """msgpack bytes of `value` (bin type for bytes; `strict`: no tuple or subclass)."""
    data: bytes = msgpack.packb(value, use_bin_type=True, strict_types=strict)
    return data


def decode(data: object) -> Envelope:
    """Decode an entry's bytes.

    Raises:
        DecodeError: not bytes, too large, not msgpack, not an envelope of this version, or a
            field of the wrong type (the message says which).
    """
    if not isinstance(data, bytes | bytearray):
        raise DecodeError(f"a stream entry must be bytes, got {type(data).__name__}")
    if len(data) > MAX_ENTRY:
        raise DecodeError(f"a stream entry of {len(data)} bytes is over the {MAX_ENTRY} limit")
    try:
        fields = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises several kinds for bad bytes
        raise DecodeError(f"a stream entry is not msgpack: {exc}") from None
    if not isinstance(fields, list) or not fields:
        raise DecodeError(f"a stream entry must be an envelope array, got {short_repr(fields)}")
    if fields[0] != WIRE:
        raise DecodeError(
            f"a stream entry of envelope version {short_repr(fields[0])} was refused: this "
            f"node speaks version {WIRE}; run the same spaceactors version on every node"
        )
    if len(fields) != 9:
        raise DecodeError(f"an envelope has 9 fields, this one {len(fields)}")
    _, kind, source, corr, target_id, target_name, sender, payload, tick = fields
    if type(kind) is not int or kind not in _KINDS:
        raise DecodeError(f"unknown envelope kind {short_repr(kind)}")
    _check("source", source, str)
    _check("corr", corr, int)
    _check("target_id", target_id, int)
    _check("target_name", target_name, str)
    if sender is not None:
        _check("sender", sender, str)
    _check("payload", payload, bytes)
    _check("tick", tick, int)
    if corr < 0 or target_id < 0 or tick < 0:
        raise DecodeError("an envelope's corr, target_id and tick are >= 0")
    if payload and kind in _BARE:
        raise DecodeError(f"an envelope of kind {_KINDS[kind].name} carries no payload")
    if not payload and kind in _LOADED:
        raise DecodeError(f"an envelope of kind {_KINDS[kind].name} carries a payload")
    return Envelope(_KINDS[kind], source, corr, target_id, target_name, sender, payload, tick)


def _check(field: str, value: object, kind: type) -> None:
    if type(value) is not kind:
        raise DecodeError(
            f"an envelope's {field} must be {kind.__name__}, got {type(value).__name__}"
        )


@attrs.frozen
class Holder:
    """Who holds a name cluster-wide: the node, the actor's id there (0: addressed by name),
    its mailbox size."""

    node: str
    actor_id: int
    capacity: int

    def encode(self) -> bytes:
        return packb([self.node, self.actor_id, self.capacity])

    @staticmethod
    def decode(data: bytes) -> Holder:
        """Raises `DecodeError` for anything but a holder record."""
        try:
            value: Any = msgpack.unpackb(data, raw=False)
        except Exception as exc:
            raise DecodeError(f"a name record is not msgpack: {exc}") from None
        if (
            not isinstance(value, list)
            or len(value) != 3
            or type(value[0]) is not str
            or type(value[1]) is not int
            or type(value[2]) is not int
            or value[1] < 0
            or value[2] < 1
        ):
            raise DecodeError(
                f"a name record must be [node, id, capacity], got {short_repr(value)}"
            )
        return Holder(value[0], value[1], value[2])


def holder_prefix(node: str) -> bytes:
    """The first bytes of every holder record of `node` (msgpack ``[node, ...``)."""
    packed = packb([node, 0, 1])
    return packed[: len(packed) - 2]


def holder_node(holder: bytes) -> str:
    """The node in a holder record ("" if it is not one)."""
    try:
        return Holder.decode(holder).node
    except DecodeError:
        return ""


_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        ActorCrashed,
        ActorNotFound,
        ActorUnavailable,
        DecodeError,
        EncodeError,
        InvalidSpec,
        NameTaken,
        StartFailed,
    )
}


def pack_reply(codec: Codec, value: object) -> bytes:
    """A reply: ``[0, value]`` for plain data (None, bool, int, float, str, bytes, lists and
    maps of those), ``[1, codec bytes]`` for a registered message.

    Raises:
        EncodeError: neither.
    """
    if value is None or type(value) in (bool, int, float, str, bytes):
        try:
            return packb([0, value])
        except (OverflowError, ValueError, TypeError) as exc:
            raise EncodeError(f"the reply cannot be encoded: {exc}") from exc
    if type(value) in (list, tuple, dict):
        try:
            return packb([0, value], strict=False)
        except (OverflowError, ValueError, TypeError):
            pass
    return packb([1, codec.encode(value, "msgpack")])


def unpack_reply(codec: Codec, data: bytes) -> object:
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:
        raise DecodeError(f"a reply is not msgpack: {exc}") from None
    if not isinstance(value, list) or len(value) != 2 or value[0] not in (0, 1):
        raise DecodeError("a reply must be [0, value] or [1, message]")
    if value[0] == 0:
        return value[1]
    if not isinstance(value[1], bytes):
        raise DecodeError("a reply's message must be bytes")
    return codec.decode(value[1], "msgpack")


def pack_error(error: BaseException) -> bytes:
    return packb([type(error).__name__, str(error)])


def unpack_error(data: bytes) -> Exception:
    try:
        value = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise DecodeError(f"an error reply is not msgpack: {exc}") from None
    if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
        raise DecodeError("an error reply must be [class name, message]")
    return _ERRORS.get(value[0], ActorCrashed)(value[1])
