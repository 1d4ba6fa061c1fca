"""How a system joins a cluster: `ClusterSpec`, node names, the transport for a URL."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from spaceactors.checks import short_repr
from spaceactors.codec import Codec, default_codec
from spaceactors.errors import InvalidSpec
from spaceactors.transport.base import Transport
from spaceactors.transport.local import LocalBroker
from spaceactors.transport.node import DEFAULT_WINDOW, Node
from spaceactors.transport.redis_url import redacted

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem


@attrs.frozen
class ClusterSpec:
    """A cluster to join, and how (``open_system(cluster=ClusterSpec(...))``).

    Args:
        broker: a Redis or Valkey URL (``redis://[user:password@]host:port[/db]``,
            ``rediss://`` for TLS) or a `LocalBroker`.
        heartbeat: seconds between this node's heartbeats and membership checks (> 0).
        ttl: seconds without a heartbeat after which a node is declared down (> heartbeat).
        window: the credit window towards each other node, in entries (>= 1).
        prefix: the key prefix of the cluster on the broker (clusters may share a server).
        codec: encodes what crosses nodes; register your message classes with it (default:
            `spaceactors.default_codec`).
        lockstep: the node of a sharded run (``spaceactors run --nodes``): it meets the
            others at barriers (`Node.barrier`) and registers no names (`Node.lockstep`).

    Raises:
        InvalidSpec: an option is out of range.
    """

    broker: str | LocalBroker
    heartbeat: float = 1.0
    ttl: float = 3.0
    window: int = DEFAULT_WINDOW
    prefix: str = "spaceactors"
    codec: Codec = default_codec
    lockstep: bool = False

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.broker, str | LocalBroker):
            raise InvalidSpec(_bad_broker(self.broker))
        for name in ("heartbeat", "ttl"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidSpec(
                    f"{name} must be a number of seconds > 0, got {short_repr(value)}"
                )
        if not self.ttl > self.heartbeat:
            raise InvalidSpec(
                f"ttl ({self.ttl} s) must be longer than the heartbeat ({self.heartbeat} s)"
            )
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise InvalidSpec(f"window must be an int >= 1, got {short_repr(self.window)}")
        check_node_name(self.prefix, "prefix")
        if not isinstance(self.codec, Codec):
            raise InvalidSpec(f"codec must be a spaceactors.Codec, got {short_repr(self.codec)}")


def default_node_name() -> str:
    """``HOSTNAME-PID``: unique on a machine, readable in a list of nodes."""
    return check_node_name(f"{socket.gethostname()}-{os.getpid()}"[:100])


def check_node_name(node: object, what: str = "a node name") -> str:
    """`node` if it is a valid node name (1-100 ASCII letters, digits, ``-``, ``_``, ``.``).

    Raises:
        InvalidSpec: it is not.
    """
    if (
        not isinstance(node, str)
        or not 0 < len(node) <= 100
        or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in node)
    ):
        raise InvalidSpec(
            f"{what} is 1-100 ASCII letters, digits, '-', '_' or '.', got {short_repr(node)}"
        )
    return node


def _bad_broker(broker: object) -> str:
    shown = redacted(broker) if isinstance(broker, str) else short_repr(broker)
    return (
        "cluster must be a Redis URL (redis://HOST:PORT or rediss://...), a "
        f"spaceactors.transport.LocalBroker or a ClusterSpec, got {shown!r}"
    )


def transport_for(spec: ClusterSpec, node: str) -> Transport:
    """The transport that reaches `spec`'s broker as `node`.

    Raises:
        InvalidSpec: the broker is no Redis URL or `LocalBroker`.
        ImportError: a Redis URL, and the ``redis`` extra is not installed.
    """
    broker = spec.broker
    if isinstance(broker, LocalBroker):
        return broker.connect(node)
    if not broker.startswith(("redis://", "rediss://")):
        raise InvalidSpec(_bad_broker(broker))
    try:
        from spaceactors.transport.redis import RedisStreams
    except ImportError as exc:
        raise ImportError(
            f"cluster= with a Redis URL needs coredis ({exc}): pip install 'spaceactors[redis]'"
        ) from exc
    try:
        return RedisStreams(broker, node, prefix=spec.prefix)
    except ValueError as exc:
        raise InvalidSpec(str(exc)) from None


def joining(cluster: object, node: object) -> Callable[[ActorSystem], Node]:
    """What `open_system` calls to make its system the node `node` of `cluster` (checked
    now: raises `InvalidSpec` or `ImportError` before anything starts)."""
    spec = cluster if isinstance(cluster, ClusterSpec) else None
    if spec is None:
        if not isinstance(cluster, str | LocalBroker):
            raise InvalidSpec(_bad_broker(cluster))
        spec = ClusterSpec(cluster)
    name = default_node_name() if node is None else check_node_name(node)
    transport = transport_for(spec, name)

    def join(system: ActorSystem) -> Node:
        return Node(
            system,
            transport,
            heartbeat=spec.heartbeat,
            ttl=spec.ttl,
            window=spec.window,
            codec=spec.codec,
            lockstep=spec.lockstep,
        )

    return join
