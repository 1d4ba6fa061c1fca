"""Suite-wide rules come from the package's own pytest plugin (spaceactors_pytest.py).

pyproject.toml sets ``trio_mode = true`` and ``spaceactors_virtual_time = true``: every async
test runs under pytest-trio, and one that takes no clock fixture as an argument
(``autojump_clock``, ``virtual_clock``, ``mock_clock``) fails, saying so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import trio

from tests.redis_server import RedisServer


class WallClock(trio.abc.Clock):
    """Trio's real clock, as a fixture, for the tests that talk to a real server (Redis):
    virtual time would jump while a reply is on its way. Bound such tests with timeouts."""

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return time.perf_counter()

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return deadline - time.perf_counter()


@pytest.fixture
def wall_clock() -> WallClock:
    """The real clock (real servers only: everything else runs in virtual time)."""
    return WallClock()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a free loopback port, for the whole session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The private server's URL, emptied for each test."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url
