"""An actor for reliable-delivery tests: it records what it handles, and can be slow or fragile."""

from __future__ import annotations

from typing import Any

import trio

import spaceactors as sa


class Ledger(sa.Actor):
    """Appends what it handles (`record`) to a shared list; takes `seconds` over each message,
    and crashes the first time it sees one in `crash_once`."""

    def __init__(
        self, handled: list[Any], crash_once: set[Any] | None = None, seconds: float = 0.0
    ) -> None:
        self.handled = handled
        self.crash_once = crash_once if crash_once is not None else set()
        self.seconds = seconds

    def record(self, message: object) -> object:
        return message

    async def handle(self, message: object) -> object:
        if self.seconds:
            await trio.sleep(self.seconds)
        if message in self.crash_once:
            self.crash_once.discard(message)
            raise RuntimeError(f"crash on {message!r}")
        self.handled.append(self.record(message))
        return None
