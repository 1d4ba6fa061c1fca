"""The Redis (or Valkey) Streams backend, through coredis (anyio-based: it runs under Trio).

Keys, under the cluster's prefix ``P`` (``spaceactors`` by default):

- ``P:inbox:NODE``: a node's inbox, a stream with the consumer group ``nodes``. Nodes write
  with pipelined ``XADD`` (one round trip per batch), read with ``XREADGROUP`` and
  acknowledge with ``XACK``; a dead node's pending entries are taken over with
  ``XAUTOCLAIM`` (its unread ones with ``XREADGROUP`` under the claimer's consumer name).
- ``P:alive:NODE``: the heartbeat, a key with a time to live (``SET ... PX``).
- ``P:nodes``: the members (a set); ``P:left:NODE``: NODE left cleanly (kept an hour);
  ``P:down:NODE``: the node that declared NODE down and takes its inbox over (a lease: if
  that node dies too, the next one to declare NODE down takes it; kept an hour). A node
  taken over is retired: out of the members, its inbox gone.
- Acknowledged entries are deleted (``XACK`` and ``XDEL`` in one round trip): an inbox holds
  only what is in flight. A node that leaves takes its inbox with it (nobody reads it); news
  to a node whose inbox has gone is dropped (``XADD NOMKSTREAM``); a barrier's keys go once
  every node has passed it.
- ``P:names``: the name directory (a hash: name -> holder record).

Nothing that must arrive goes over pub/sub: a slow subscriber is cut off by the server.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import coredis
import coredis.exceptions
import trio

from spaceactors.transport.base import (
    Beat,
    BrokerUnavailable,
    Entry,
    NodeNameTaken,
    Passage,
    Transport,
)
from spaceactors.transport.redis_url import redacted
from spaceactors.transport.wire import holder_prefix, is_news

GROUP = "nodes"

_FAILURES = (
    OSError,
    TimeoutError,
    coredis.exceptions.RedisError,
    anyio.ClosedResourceError,  # a connection of a pool cancelled under it (a shutdown)
    anyio.BrokenResourceError,
)
"""What a call to Redis raises when the server is away: `BrokerUnavailable` for the caller."""

_CLAIM = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (not current) or string.find(current, ARGV[3], 1, true) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return false
end
return current
"""

_ARRIVE = """
local arrived = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 3600)
if arrived == tonumber(ARGV[1]) then
  local token = 'all'
  if redis.call('EXISTS', KEYS[3]) == 1 then token = 'halt' end
  for i = 1, arrived do redis.call('RPUSH', KEYS[2], token) end
  redis.call('EXPIRE', KEYS[2], 3600)
  redis.call('DEL', KEYS[1])
end
return arrived
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""

_DECLARE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local holder = redis.call('GET', KEYS[2])
if holder == ARGV[1] then return 0 end
if holder and redis.call('EXISTS', ARGV[2] .. holder) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', 3600)
return 1
"""

_FORGET = """
if ARGV[3] == '1' then redis.call('SREM', KEYS[1], ARGV[1]) end
local names = redis.call('HGETALL', KEYS[2])
for i = 1, #names, 2 do
  if string.find(names[i + 1], ARGV[2], 1, true) == 1 then
    redis.call('HDEL', KEYS[2], names[i])
  end
end
return 0
"""

_BEAT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
return 0
"""


class RedisStreams(Transport):
    """Node `node`'s connection to the Redis server at `url`.

    Args:
        url: ``redis://[[user]:password@]host:port[/db]`` or ``rediss://`` for TLS.
        node: this node's name.
        prefix: the cluster's key prefix (several clusters may share one server).
        timeout: seconds to wait for a connection or an answer before `BrokerUnavailable`.

    Raises:
        ValueError: `url` is not a ``redis://`` or ``rediss://`` URL.
    """

    def __init__(
        self, url: str, node: str, *, prefix: str = "spaceactors", timeout: float = 5.0
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://")):
            raise ValueError(
                f"the Redis URL must start with redis:// or rediss://, got {redacted(str(url))!r}"
            )
        database = urllib.parse.urlsplit(url).path.lstrip("/")
        if database and not database.isdigit():
            raise ValueError(
                f"the Redis URL {redacted(url)!r} names database {database!r}: a database is "
                "a number (redis://HOST:PORT/0)"
            )
        self.node = node
        self.url = url
        self.prefix = prefix
        self._token = secrets.token_hex(8)
        self._timeout = timeout
        try:
            self._client: Any = coredis.Redis.from_url(
                url, stream_timeout=None, connect_timeout=timeout
            )
        except ValueError as exc:  # a port that is none, out of range...
            raise ValueError(f"the Redis URL {redacted(url)!r} is not one: {exc}") from None
        self._entered = False
        self._rewound = True
        self._inbox = self._key("inbox", node)
        self._claiming: dict[str, str] = {}  # dead node -> XAUTOCLAIM cursor ("": walked)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def __repr__(self) -> str:
        return f"<RedisStreams {self.node!r} at {redacted(self.url)}>"

    async def __aenter__(self) -> RedisStreams:
        try:
            await self._client.__aenter__()
        except _FAILURES as exc:
            raise BrokerUnavailable(f"cannot reach Redis at {redacted(self.url)}: {exc}") from None
        self._entered = True
        return self

    async def aclose(self) -> None:
        if self._entered:
            self._entered = False
            await self._client.__aexit__(None, None, None)

    async def _do(self, request: Any) -> Any:
        try:
            return await request
        except _FAILURES as exc:
            raise BrokerUnavailable(f"Redis at {redacted(self.url)}: {exc}") from None

    async def join(self, ttl: float) -> None:
        taken = await self._do(
            self._client.set(
                self._key("alive", self.node),
                self._token,
                condition=coredis.PureToken.NX,
                px=_ms(ttl),
            )
        )
        if not taken:
            raise NodeNameTaken(f"a node named {self.node!r} is alive in the cluster already")
        gone = [self._key("down", self.node), self._key("left", self.node)]
        await self._do(self._client.delete(gone))
        await self._do(self._client.sadd(self._key("nodes"), [self.node]))
        await self.join_group(self._inbox)
        self._rewound = True

    async def beat(self, ttl: float) -> Beat:
        alive, down = self._key("alive", self.node), self._key("down", self.node)
        kept = await self._do(self._client.eval(_BEAT, [alive, down], [self._token, _ms(ttl)]))
        if kept == 1:
            return "kept"
        if kept == -1:
            return "lost"
        try:  # the server lost the key, and nobody declared this node down: join again
            await self.join(ttl)
        except NodeNameTaken:
            return "lost"
        return "rejoined"

    async def leave(self) -> None:
        await self._do(self._client.set(self._key("left", self.node), "1", ex=3600))
        await self._do(self._client.delete([self._key("alive", self.node)]))
        await self._forget(self.node, leaving=True)
        await self._do(self._client.delete([self._inbox]))  # (nobody takes a left node over)

    @contextlib.asynccontextmanager
    async def closing(self) -> AsyncIterator[object]:
        """Swap in, for the block, a client opened here, under the caller's (shielded)
        scope: at a shutdown the client's connections were cancelled with the node's tasks
        (they run in a task group of the node's), and the node still has its last words to
        say (replies, name releases, leaving), or the others would wait on it for ever."""
        client = self._client
        self._client = coredis.Redis.from_url(
            self.url, stream_timeout=None, connect_timeout=self._timeout
        )
        try:
            async with self._client:
                yield None
        except _FAILURES as exc:
            raise BrokerUnavailable(f"Redis at {redacted(self.url)}: {exc}") from None
        finally:
            self._client = client

    async def has_left(self, node: str) -> bool:
        return bool(await self._do(self._client.exists([self._key("left", node)])))

    async def members(self) -> dict[str, bool]:
        nodes = sorted(_text(n) for n in await self._do(self._client.smembers(self._key("nodes"))))
        if not nodes:
            return {}
        alive = await self._do(self._client.mget([self._key("alive", n) for n in nodes]))
        return {node: value is not None for node, value in zip(nodes, alive, strict=True)}

    async def declare_down(self, node: str) -> bool:
        keys = [self._key("alive", node), self._key("down", node)]
        won = await self._do(self._client.eval(_DECLARE, keys, [self.node, self._key("alive", "")]))
        return bool(won)

    async def forget(self, node: str) -> None:
        await self._forget(node, leaving=False)

    async def retire(self, node: str) -> None:
        await self._do(self._client.srem(self._key("nodes"), [node]))
        await self._do(self._client.delete([self._key("inbox", node)]))

    async def _forget(self, node: str, *, leaving: bool) -> None:
        prefix = holder_prefix(node)
        keys = [self._key("nodes"), self._key("names")]
        await self._do(self._client.eval(_FORGET, keys, [node, prefix, "1" if leaving else "0"]))

    async def append(self, batch: Sequence[tuple[str, bytes]]) -> None:
        if not batch:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for node, data in batch:  # (news to a node that has gone: dropped)
                    nomkstream = True if is_news(data) else None
                    pipe.xadd(self._key("inbox", node), {"e": data}, nomkstream=nomkstream)
        except _FAILURES as exc:
            raise BrokerUnavailable(f"Redis at {redacted(self.url)}: {exc}") from None

    async def read(self, count: int, block: float) -> list[Entry]:
        if self._rewound:
            self._rewound = False
            pending = await self._read_group(self._inbox, "0", count, None)
            if pending:
                return pending
        return await self._read_group(self._inbox, ">", count, block)

    async def _read_group(
        self, stream: str, start: str, count: int, block: float | None
    ) -> list[Entry]:
        node = stream.rsplit(":", 1)[1]
        wait = None if block is None or block <= 0 else max(1, _ms(block))
        try:
            answer = await self._client.xreadgroup(
                GROUP, self.node, {stream: start}, count=count, block=wait
            )
        except coredis.exceptions.StreamConsumerGroupError:  # NOGROUP: the inbox was deleted
            await self.join_group(stream)  # (FLUSHALL, a restart): make it again
            return []
        except _FAILURES as exc:
            raise BrokerUnavailable(f"Redis at {redacted(self.url)}: {exc}") from None
        if not answer:
            return []
        return [
            Entry(_text(entry.identifier), _data(entry.field_values), node)
            for entries in answer.values()
            for entry in entries
        ]

    async def join_group(self, stream: str) -> None:
        # coredis strips the error code: BUSYGROUP (the group exists, as wanted) is this class.
        try:
            await self._client.xgroup_create(stream, GROUP, identifier="0", mkstream=True)
        except coredis.exceptions.StreamDuplicateConsumerGroupError:
            pass
        except _FAILURES as exc:
            raise BrokerUnavailable(f"Redis at {redacted(self.url)}: {exc}") from None

    def rewind(self) -> None:
        self._rewound = True

    async def ack(self, node: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        stream = self._key("inbox", node)
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.xack(stream, GROUP, list(ids))
                pipe.xdel(stream, list(ids))  # (one group reads it: nobody else needs them)
        except _FAILURES as exc:
            raise BrokerUnavailable(f"Redis at {redacted(self.url)}: {exc}") from None

    async def claim(self, node: str, count: int) -> list[Entry]:
        stream = self._key("inbox", node)
        # XAUTOCLAIM with no minimum idle time would hand this node's claims back to it:
        # walk the pending list once, cursor by cursor.
        cursor = self._claiming.get(node, "0-0")
        while cursor != "":
            answer = await self._do(
                self._client.xautoclaim(stream, GROUP, self.node, 0, cursor, count=count)
            )
            following = _text(answer[0])
            cursor = self._claiming[node] = "" if following == "0-0" else following
            claimed = [
                Entry(_text(entry.identifier), _data(entry.field_values), node)
                for entry in answer[1]
                if entry is not None
            ]
            if claimed:
                return claimed
        # Entries it never read are not pending: read them under this node's consumer name.
        return await self._read_group(stream, ">", count, None)

    async def barrier(
        self, key: str, count: int, patience: float, halt: str | None = None
    ) -> Passage:
        arrived, go = self._key("barrier", key), self._key("barrier", key, "go")
        halted = self._key("halt", halt or "")
        await self._do(self._client.eval(_ARRIVE, [arrived, go, halted], [count]))
        answer = await self._do(self._client.blpop([go], timeout=max(patience, 0.01)))
        if answer is None:
            return "late"
        return "halt" if halt and _text(answer[1]) == "halt" else "all"

    async def raise_halt(self, halt: str) -> None:
        await self._do(self._client.set(self._key("halt", halt), "1", ex=3600))

    async def pause(self, seconds: float) -> None:
        # Keys expire in real time: a heartbeat must not follow a virtual clock.
        await trio.to_thread.run_sync(time.sleep, seconds, abandon_on_cancel=True)

    async def claim_name(self, name: str, holder: bytes) -> bytes | None:
        current = await self._do(
            self._client.eval(
                _CLAIM, [self._key("names")], [name, holder, holder_prefix(self.node)]
            )
        )
        return None if current is None else bytes(current)

    async def release_name(self, name: str, holder: bytes) -> None:
        await self._do(self._client.eval(_RELEASE, [self._key("names")], [name, holder]))

    async def name(self, name: str) -> bytes | None:
        value = await self._do(self._client.hget(self._key("names"), name))
        return None if value is None else bytes(value)

    async def names(self) -> dict[str, bytes]:
        table = await self._do(self._client.hgetall(self._key("names")))
        return {_text(k): bytes(v) for k, v in table.items()}


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _data(fields: Any) -> bytes:
    value = fields.get(b"e", b"") if hasattr(fields, "get") else b""
    return bytes(value) if isinstance(value, bytes | bytearray) else b""
