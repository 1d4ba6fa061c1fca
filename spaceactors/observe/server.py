"""The observation server's life: its socket, its thread, its own Trio run on the real clock.

`Observer` binds its socket when `open_system` is called (a taken port fails there, before
anything starts), and runs as the ``observe`` service of the system's tree: the service starts a
thread that serves HTTP (Hypercorn's Trio worker, no signal handlers: a shutdown trigger) in a
Trio run of its own, on the real clock, so a virtual-time system going flat out never times out
its connections; when the service is cancelled (the system closing), it stops the server and
waits for the thread to end. Reads and controls cross to the system's thread through its
`trio.lowlevel.TrioToken`, so each snapshot is taken between two steps of the system.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import outcome
import trio

from spaceactors.checks import short_repr
from spaceactors.clocks import RunControl, run_control
from spaceactors.errors import InvalidSpec
from spaceactors.lifecycle import LifecycleEvent
from spaceactors.observe.model import sim_time
from spaceactors.observe.tree import walk
from spaceactors.specs import ServiceSpec

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem

T = TypeVar("T")

TOKEN_VARIABLE = "SPACEACTORS_OBSERVE_TOKEN"
KEEP_EVENTS = 1000
"""How many recent lifecycle events the server keeps for its ``/events`` clients."""
SYSTEM_TIMEOUT = 5.0
"""Real seconds a request waits for the system's thread before answering 503."""
PRELOAD = (
    "spaceactors.observe.app",
    "hypercorn.config",
    "hypercorn.utils",
    "hypercorn.trio.run",
    "hypercorn.trio.tcp_server",
    "hypercorn.protocol.h11",
    "hypercorn.protocol.h2",
    "anyio._backends._trio",
    "anyio._core._fileio",
    "encodings.idna",
)
"""What the server's thread would import as it starts and serves its first requests, imported
in the system's thread before that thread starts (see `preload`)."""


def preload() -> None:
    """Import everything the server's thread needs, now, in the caller's thread.

    An import in the server's thread while the system runs flat out waits for the GIL after
    each of its hundreds of file reads (up to the switch interval, 5 ms, each): imported there,
    the server took seconds to answer its first request during a 10,000-ship build.
    """
    for name in PRELOAD:
        importlib.import_module(name)


class SystemGone(Exception):
    """The system's run has ended, or did not answer in time."""


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port).

    Raises:
        InvalidSpec: it is not one.
    """
    host, sep, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise InvalidSpec(
            f"observe must be HOST:PORT (port 0 to 65535, 0 for any free one), "
            f"got {short_repr(address)}"
        )
    return host, int(port_text)


def check_address(address: str, token: str | None) -> tuple[str, int, str | None]:
    """The (host, port, token) a server for `address` uses: the token given, else the
    environment variable ``SPACEACTORS_OBSERVE_TOKEN``.

    Raises:
        InvalidSpec: `address` is not ``HOST:PORT``, the token is empty, or the address is
            not loopback and there is no token.
    """
    host, port = parse_address(address)
    if token is None:
        token = os.environ.get(TOKEN_VARIABLE) or None
    if token is not None and not token.strip():
        raise InvalidSpec("observe_token is empty: give a token, or none at all")
    if token is None and not is_loopback(host):
        raise InvalidSpec(
            f"the observation server would listen on {host}, beyond this machine, "
            f"without a token: give one (--observe-token, observe_token=, or the "
            f"environment variable {TOKEN_VARIABLE}), or bind to 127.0.0.1"
        )
    return host, port, token


class CannotListen(OSError):
    """The observation server's address cannot be bound (taken, or not this machine's)."""


def shown_host(host: str) -> str:
    """`host` as a URL or a ``Host`` header names it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Observer:
    """The observation server of one system (``open_system(observe=...)``).

    Binds `address` at once and listens; `service` is the ``observe`` service that serves it.

    Raises:
        InvalidSpec: `address` is not ``HOST:PORT``, or not loopback while there is no token
            (neither `token` nor the environment variable ``SPACEACTORS_OBSERVE_TOKEN``).
        CannotListen: the address cannot be bound (an `OSError`).
    """

    def __init__(self, address: str, token: str | None = None) -> None:
        host, port, self.token = check_address(address, token)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(infos[0][4])
            self.socket.listen(128)
        except OSError as exc:
            self.socket.close()
            why = exc.strerror or exc
            raise CannotListen(
                exc.errno, f"the observation server cannot listen on {address}: {why}"
            ) from exc
        bound_host, bound_port = self.socket.getsockname()[:2]
        shown = shown_host(bound_host)
        self.url = f"http://{shown}:{bound_port}"
        """Where it listens: ``http://HOST:PORT`` with the port actually bound."""
        self.hosts: list[str] = (
            ["*"]
            if not is_loopback(host)
            else sorted({"127.0.0.1", "localhost", "[::1]", shown_host(host)})
        )
        """The host names requests may name (``Host``): on loopback, only loopback names, so
        that a page whose name was rebound to 127.0.0.1 gets nothing; elsewhere any (the token
        guards it)."""
        self.system: ActorSystem | None = None
        self.control: RunControl | None = None
        self.events: collections.deque[tuple[int, LifecycleEvent]] = collections.deque(
            maxlen=KEEP_EVENTS
        )
        self.event_count = 0
        self._lock = threading.Lock()
        self._system_token: trio.lowlevel.TrioToken | None = None
        self._server_token: trio.lowlevel.TrioToken | None = None
        self._new_events: trio.Event | None = None  # in the server's run
        self._wake_pending = False
        self._closing = False
        self.failure: BaseException | None = None
        """What ended the server's thread with an error, if anything did."""

    def attach(self, system: ActorSystem) -> None:
        """Serve `system` (`open_system` calls this)."""
        self.system = system
        # Per-kind figures read without walking the tree; totals that never go down.
        system.lifecycle.start_tallying(walk(system).children)

    def service(self) -> ServiceSpec:
        """The ``observe`` service for the system's tree."""
        return ServiceSpec("observe", self.serve)

    def close(self) -> None:
        """Close the socket (`open_system` does, as the system closes)."""
        self.socket.close()

    # --- the system's side ---------------------------------------------------------------------

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ``observe`` service: run the server thread until cancelled, then stop it."""
        system = self.system
        if system is None:
            raise RuntimeError("Observer.serve before attach")
        preload()
        self.control = run_control()
        self._system_token = trio.lowlevel.current_trio_token()
        finished = trio.Event()
        self._closing = False
        thread = threading.Thread(
            target=self._thread_main, args=(finished,), name="spaceactors-observe", daemon=True
        )
        stop_listening = system.lifecycle.listen(self._event)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.control.serve)
                thread.start()
                system.observe_url = self.url
                task_status.started()
                await finished.wait()  # only if the server's thread ended by itself
                if self.failure is not None:
                    raise RuntimeError(
                        f"the observation server at {self.url} stopped: {self.failure!r}"
                    ) from self.failure
                nursery.cancel_scope.cancel()
        finally:
            stop_listening()
            system.observe_url = None
            if thread.is_alive():
                self._shutdown()
                if self.control.steerable:
                    # The server takes real time to close (its graceful timeout), answering
                    # the requests in flight from the run's thread: time stands still
                    # meanwhile, or a virtual clock would jump on and let the rest of the run
                    # go on for a varying while (another trace each time). Resumed below.
                    self.control.pause()
                with trio.CancelScope(shield=True):
                    await finished.wait()
                thread.join()
            if self.control.steerable and self.control.paused:
                self.control.resume()  # nobody can resume it now: a frozen clock never stops

    def _event(self, event: LifecycleEvent) -> None:
        """A lifecycle listener (in the system's thread): keep it, wake the server's clients.
        Its time, on the run's clock, is shown in sim seconds, as ``/status`` shows time."""
        if self.system is not None:
            event = attrs.evolve(event, time=sim_time(self.system, event.time))
        with self._lock:
            self.event_count += 1
            self.events.append((self.event_count, event))
            if self._wake_pending or self._server_token is None:
                return
            self._wake_pending = True
        with contextlib.suppress(trio.RunFinishedError):
            self._server_token.run_sync_soon(self._wake_clients)

    def _wake_clients(self) -> None:
        with self._lock:
            self._wake_pending = False
        if self._new_events is not None:
            self._new_events.set()
            self._new_events = trio.Event()

    def _shutdown(self) -> None:
        self._closing = True
        token = self._server_token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._wake_clients)

    # --- the server's thread -----------------------------------------------------------------

    def _thread_main(self, finished: trio.Event) -> None:
        try:
            trio.run(self._serve_http)
        except BaseException as exc:  # reported by the service, in the system's thread
            self.failure = exc
        finally:
            self._server_token = None
            token = self._system_token
            if token is not None:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(finished.set)

    async def _serve_http(self) -> None:
        from hypercorn.config import Config, Sockets
        from hypercorn.trio.run import worker_serve
        from hypercorn.utils import wrap_app

        from spaceactors.observe.app import make_app

        self._new_events = trio.Event()
        self._server_token = trio.lowlevel.current_trio_token()
        config = Config()
        config.accesslog = None
        config.errorlog = logging.getLogger("spaceactors.observe.http")
        config.graceful_timeout = 1.0
        config.keep_alive_timeout = 5.0
        app = wrap_app(make_app(self), config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
        sockets = Sockets([], [self.socket], [])

        async def shutdown_trigger() -> None:
            while not self._closing:
                await self._wait_for_wake()

        if self._closing:
            return
        await worker_serve(app, config, sockets=sockets, shutdown_trigger=shutdown_trigger)

    async def _wait_for_wake(self) -> None:
        assert self._new_events is not None
        await self._new_events.wait()

    async def wait_for_events(self, seen: int) -> None:
        """In the server's run: wait for an event numbered above `seen` (or for the server
        to stop). Each event is counted before its wake-up is sent, and the count is tested
        with no checkpoint before the wait: no wake-up is lost."""
        while self.event_count <= seen and not self._closing:
            await self._wait_for_wake()

    @property
    def closing(self) -> bool:
        """True once the server is stopping (event streams end)."""
        return self._closing

    async def in_system(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the system's thread, from the server's run; its result or error.

        Raises:
            SystemGone: the system's run has ended, or did not answer within
                `SYSTEM_TIMEOUT` real seconds.
        """
        token, server = self._system_token, trio.lowlevel.current_trio_token()
        if token is None:
            raise SystemGone("the system is not running")
        done = trio.Event()
        box: list[outcome.Outcome[T]] = []

        def call() -> None:
            box.append(outcome.capture(fn))
            with contextlib.suppress(trio.RunFinishedError):
                server.run_sync_soon(done.set)

        try:
            token.run_sync_soon(call)
        except trio.RunFinishedError:
            raise SystemGone("the system's run has ended") from None
        with trio.move_on_after(SYSTEM_TIMEOUT):
            await done.wait()
        if not box:
            raise SystemGone(f"the system did not answer within {SYSTEM_TIMEOUT:g} s")
        return box[0].unwrap()

    def events_after(self, seen: int) -> list[tuple[int, LifecycleEvent]]:
        """The kept events numbered above `seen`, oldest first."""
        with self._lock:
            return [(n, e) for n, e in self.events if n > seen]


def observer_of(value: Any) -> Observer:
    """`value` as an `Observer` (for the app, typed)."""
    assert isinstance(value, Observer)
    return value
