"""The tests' private redis-server (`spaceactors.transport.server.RedisServer`).

With ``CI=true`` a missing ``redis-server`` fails the tests that need one (``.ci/run``
installs it); elsewhere they are skipped, saying how to install it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from spaceactors.transport.server import RedisNotInstalled
from spaceactors.transport.server import RedisServer as _Server


class RedisServer(_Server):
    """A started server; `flush` empties it."""

    def __init__(self, folder: Path, password: str | None = None) -> None:
        try:
            super().__init__(folder, password=password)
        except RedisNotInstalled as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(str(exc))
            pytest.skip(str(exc))
        self.start()

    def flush(self) -> None:
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        subprocess.run(
            ["redis-cli", "-p", str(self.port), *auth, "FLUSHALL"],
            check=True,
            capture_output=True,
            timeout=10,
        )
