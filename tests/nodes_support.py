"""What the multi-node tests share."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable

import trio

import spaceactors as sa
from spaceactors.transport import ClusterSpec


async def until(check: Callable[[], object], step: float = 0.02) -> None:
    """Poll `check` (a function, sync or async) every `step` seconds until it is true."""
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await trio.sleep(step)


@contextlib.asynccontextmanager
async def killed_at_exit(spec: ClusterSpec, node: str) -> AsyncIterator[sa.ActorSystem]:
    """The system of `node` in the cluster `spec`, whose process is killed when the block ends:
    its run is cancelled there (no leave, no clean stop). Cut its connections first
    (``broker.sever(node)``) to make it die inside the block, as a process that stops reading
    and heartbeating does."""
    with trio.CancelScope() as doomed:
        async with sa.open_system(cluster=spec, node=node) as system:
            yield system
            doomed.cancel()
