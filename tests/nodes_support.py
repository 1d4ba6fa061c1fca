"""What the multi-node tests share."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import trio


async def until(check: Callable[[], object], step: float = 0.02) -> None:
    """Poll `check` (a function, sync or async) every `step` seconds until it is true."""
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await trio.sleep(step)
