"""ServiceCell: the runtime of a supervised service (a plain task, no mailbox).

Services are how the engine runs its own long-lived work (the router's delivery service, ...)
under the same supervision rules as actors: a crash is reported to the supervisor, which
restarts the service per its spec; whatever must survive lives in a state object outside it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio

from spaceactors.checks import describe
from spaceactors.errors import ActorUnavailable, NameTaken, StartFailed
from spaceactors.handshake import Handshake
from spaceactors.policy import SHUTDOWN_EXIT, Exit, failed

if TYPE_CHECKING:
    from spaceactors.specs import ServiceSpec
    from spaceactors.supervisor import Supervisor

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
        """Serve until asked to stop (a shutdown) or until `serve` raises (a failure).

        Raises:
            StartFailed: `serve` raised before ``task_status.started()`` (as an actor's
                `on_start`: OTP's ``start_child`` answers ``{error, Reason}``).
        """
        status = Handshake(task_status)
        with trio.CancelScope() as self._stop:
            try:
                await self.spec.serve(status)
            except Exception as exc:
                self.last_error = describe(exc)
                if not status.done:
                    if isinstance(exc, StartFailed | NameTaken):
                        raise  # (saying why already, as `start_child` documents them)
                    raise StartFailed(
                        f"service {self.name!r} failed to start: {describe(exc)}"
                    ) from exc
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


class ServiceLife:
    """Whether one of the engine's services (router, reliable, limiter) takes calls now.

    Its entry points refuse work once the service has stopped, instead of queueing work that
    nobody will do: after leaving `open_system`, or once the service or the ``services``
    supervisor has been stopped. A crashed service still takes calls: its supervisor restarts
    it, and what the calls queued waits in the service's state object meanwhile. (A service
    cancelled to be restarted beside a crashed sibling refuses calls until it runs again.)
    """

    __slots__ = ("name", "serving", "stopped")

    def __init__(self, name: str) -> None:
        self.name = name
        self.serving = False  # checked first, inline, by hot entry points
        self.stopped = False

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Wrap a service's `serve`: serving inside; stopped after, unless it crashed."""
        self.serving, self.stopped = True, False
        crashed = False
        try:
            yield
        except Exception:
            crashed = True
            raise
        finally:
            self.serving, self.stopped = False, not crashed

    def refusal(self, services: Supervisor, action: str) -> ActorUnavailable | None:
        """The error for a call that wants to `action` now, or None if the call may go on.

        Hot entry points call this only when not `serving`; the others call it always, so
        they refuse from the moment the ``services`` supervisor stops running.
        """
        if not self.stopped and services.running:
            return None
        return ActorUnavailable(
            f"the {self.name} service has stopped (the system is closed or shutting down); "
            f"cannot {action}"
        )
