"""``python -m benchmarks.nodes_peer URL NODE HEARTBEAT TTL``: the other node of `benchmarks.nodes`.

Opens a system as node NODE of the cluster at URL (Redis), spawns its actors (``sink``: counts
payloads; ``echo``: answers each payload with its ``seq``; ``slow``: handles one payload every
`SLOW` seconds and writes ``handled SEQ`` on stdout, unbuffered, so a SIGKILL loses no line),
prints ``ready`` and runs until its stdin closes (or it is killed).
"""

from __future__ import annotations

import os
import sys

import trio

import spaceactors as sa
from benchmarks.nodes import SLOW, SLOW_MAILBOX, Payload, Read
from spaceactors.transport import ClusterSpec


class Sink(sa.Actor):
    def __init__(self) -> None:
        self.count = 0

    async def handle(self, message: object) -> object:
        if type(message) is Read:
            return self.count
        self.count += 1
        return None


class Echo(sa.Actor):
    async def handle(self, message: object) -> object:
        assert isinstance(message, Payload)
        return message.seq


class Slow(sa.Actor):
    async def handle(self, message: object) -> object:
        assert isinstance(message, Payload)
        await trio.sleep(SLOW)
        os.write(1, b"handled %d\n" % message.seq)  # unbuffered: written before a kill
        return None


async def serve(url: str, node: str, heartbeat: float, ttl: float) -> None:
    spec = ClusterSpec(url, heartbeat=heartbeat, ttl=ttl)
    async with sa.open_system(cluster=spec, node=node) as system:
        await system.spawn(Sink, name=f"{node}-sink")
        await system.spawn(Echo, name=f"{node}-echo")
        await system.spawn(Slow, name=f"{node}-slow", mailbox_size=SLOW_MAILBOX)
        os.write(1, b"ready\n")
        await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)


def main() -> None:
    url, node, heartbeat, ttl = sys.argv[1:5]
    trio.run(serve, url, node, float(heartbeat), float(ttl))


if __name__ == "__main__":
    main()
