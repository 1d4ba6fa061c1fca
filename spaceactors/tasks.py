"""A body with a helper task beside it, the body's own error unwrapped.

Used where a run needs a watcher for as long as it lasts (the command's signal watcher, the
scenario runner's stop watcher): both live in one nursery, the helper is cancelled as soon as the
body ends, and an exception from the body comes out as itself, not inside an ``ExceptionGroup``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


async def beside(
    body: Callable[[], Awaitable[T]],
    helper: Callable[..., Awaitable[object]],
    *args: Any,
) -> T:
    """Run ``body()`` with ``helper(*args)`` beside it; return what the body returns.

    The helper is started with ``nursery.start`` (it must call ``task_status.started()``)
    before the body runs, and cancelled when the body ends. An exception from the body is
    re-raised as it is; one from the helper comes out of the nursery as Trio raises it.
    """
    failed: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(helper, *args)
        try:
            result = await body()
        except trio.Cancelled:
            raise
        except BaseException as exc:  # re-raised below, outside the nursery, unwrapped
            failed = exc
        nursery.cancel_scope.cancel()
    if failed is not None:
        raise failed
    return result  # bound: the body returned, or we raised above
