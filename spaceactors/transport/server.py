"""A private ``redis-server`` on a free loopback port, for ``spaceactors run --nodes`` without
``--redis`` (and for the tests): no persistence, its files in a folder of its own."""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spaceactors.errors import SpaceActorsError

INSTALL_HINT = (
    "install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) "
    "or give --redis URL"
)


class RedisNotInstalled(SpaceActorsError):
    """No ``redis-server`` on the PATH."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` this process runs: `start` it, `stop` it, `start` it again (same
    port, empty). `url` reaches it.

    Args:
        folder: where it keeps its files (default: a new temporary folder).
        password: require this password (``--requirepass``).

    Raises:
        RedisNotInstalled: ``redis-server`` is not on the PATH.
    """

    def __init__(self, folder: Path | None = None, *, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisNotInstalled(f"redis-server is not installed: {INSTALL_HINT}")
        self.binary = binary
        self._temporary = None if folder is not None else tempfile.TemporaryDirectory()
        self.folder = folder if folder is not None else Path(self._temporary.name)  # type: ignore[union-attr]
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it listens. On Linux it ends when the thread that started
        it does (call it from the main thread: it never outlives this process).

        Raises:
            RuntimeError: it exited, or did not listen within `timeout` seconds.
        """
        arguments = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.password:
            arguments += ["--requirepass", self.password]
        self.process = subprocess.Popen(  # its own session: a Ctrl-C is for its owner
            arguments,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_ends_with_its_parent,
        )
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}")
            time.sleep(0.02)

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Kill it (idempotent); what it held is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def close(self) -> None:
        """Stop it and remove its temporary folder."""
        self.stop()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_its_parent() -> None:
    """(In the child, before redis-server starts, Linux only) SIGTERM when the thread that
    started it ends: a private server never outlives its command, even a SIGKILLed one.
    (`RedisServer.start` from the main thread, then: a thread of Trio's cache ends when idle.)"""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return


_PR_SET_PDEATHSIG = 1
