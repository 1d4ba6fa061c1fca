"""ServiceCell: the runtime of a supervised service (a plain task, no mailbox).

Services are how the engine runs its own long-lived work (the router's delivery service, ...)
under the same supervision rules as actors: a crash is reported to the supervisor, which
restarts the service per its spec; whatever must survive lives in a state object outside it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from spaceactors.policy import SHUTDOWN_EXIT, Exit, failed

if TYPE_CHECKING:
    from spaceactors.specs import ServiceSpec

logger = logging.getLogger("spaceactors.service")


class ServiceCell:
    """A supervised service across its incarnations."""

    needs_start_handshake = True

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self.alive = True
        self.restarts = 0
        self.last_error: str | None = None
        self._stop: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"<Service {self.spec.name!r}>"

    @property
    def name(self) -> str:
        """The service's name among its supervisor's children."""
        return self.spec.name

    def prepare(self) -> None:
        """Nothing to build before a service starts."""

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> Exit:
        """Serve until asked to stop (a shutdown) or until `serve` raises (a failure)."""
        with trio.CancelScope() as self._stop:
            try:
                await self.spec.serve(task_status)
            except Exception as exc:
                self.last_error = repr(exc)
                logger.warning("service %r crashed", self.name, exc_info=exc)
                return failed(exc)
        return SHUTDOWN_EXIT

    def request_shutdown(self, *, final: bool = True) -> None:
        # A service has nothing to finish: stopping it gracefully is cancelling it.
        if self._stop is not None:
            self._stop.cancel()

    def restarting(self) -> None:
        self.restarts += 1

    def close(self) -> None:
        self.alive = False

    def reopen(self) -> None:
        self.alive = True
