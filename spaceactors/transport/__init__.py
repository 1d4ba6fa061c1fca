"""Several actor systems as one cluster: the transport interface and its backends.

Open a system as a node with ``open_system(cluster="redis://HOST:PORT", node="alpha")``; see
docs/nodes.md. The backends: `RedisStreams` (Redis or Valkey Streams through coredis, the
extra ``spaceactors[redis]``) and `LocalBroker` (in process, for tests). A system that is no
node never imports this package, and local sends never touch it.
"""

from spaceactors.transport.base import (
    BrokerUnavailable,
    Entry,
    NodeLost,
    NodeNameTaken,
    Passage,
    Transport,
)
from spaceactors.transport.local import LocalBroker
from spaceactors.transport.node import DEFAULT_WINDOW, Node
from spaceactors.transport.remote import RemoteRef
from spaceactors.transport.spec import ClusterSpec
from spaceactors.transport.spec import joining as joining  # (what open_system calls)

__all__ = [
    "DEFAULT_WINDOW",
    "BrokerUnavailable",
    "ClusterSpec",
    "Entry",
    "LocalBroker",
    "Node",
    "NodeLost",
    "NodeNameTaken",
    "Passage",
    "RemoteRef",
    "Transport",
]
