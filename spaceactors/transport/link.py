"""The credit window from one node to another: backpressure across nodes (`Link`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from spaceactors.transport.node import Node
    from spaceactors.transport.remote import RemoteRef


class Link:
    """The credit window from this node to another (`peer`)."""

    __slots__ = ("_lot", "_node", "credits", "down", "peer")

    def __init__(self, node: Node, peer: str, window: int) -> None:
        self._node = node
        self.peer = peer
        self.credits = window
        self.down = False
        self._lot = trio.lowlevel.ParkingLot()

    def send_nowait(self, ref: RemoteRef, message: object) -> None:
        if self.down:
            raise trio.BrokenResourceError
        if self.credits <= 0:
            raise trio.WouldBlock
        data = self._node.envelope(ref, message)  # EncodeError: nothing sent
        self.credits -= 1
        self._node.post(self.peer, data)

    async def send(self, ref: RemoteRef, message: object) -> None:
        while not self.down and self.credits <= 0:
            await self._lot.park()
        self.send_nowait(ref, message)
        await trio.lowlevel.checkpoint()

    async def send_data(self, data: bytes) -> None:
        """Post an entry already encoded, waiting for a credit (nothing if the peer is down)."""
        while not self.down and self.credits <= 0:
            await self._lot.park()
        if not self.down:
            self.credits -= 1
            self._node.post(self.peer, data)
        await trio.lowlevel.checkpoint()

    def grant(self, credits: int) -> None:
        self.credits += credits
        self._lot.unpark_all()

    def fail(self) -> None:
        self.down = True
        self._lot.unpark_all()
