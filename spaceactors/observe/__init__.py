"""The observation server (extra ``spaceactors[observe]``): ``/metrics`` for Prometheus,
``/status`` (the supervision tree as JSON), ``/events`` (server-sent lifecycle events),
``/control`` (pause, resume, step, speed) and a dashboard at ``/``.

Start it with ``open_system(observe="127.0.0.1:0")`` or ``spaceactors run --observe``; see
docs/observing.md. The engine's core imports nothing from here.
"""

import importlib

from spaceactors.observe.server import (
    TOKEN_VARIABLE,
    CannotListen,
    Observer,
    check_address,
    is_loopback,
    parse_address,
)

REQUIRES = ("starlette", "hypercorn", "prometheus_client")
"""The libraries of the ``observe`` extra."""


def require() -> None:
    """Check that the ``observe`` extra's libraries import.

    Raises:
        ImportError: one is missing (the message names it).
    """
    for name in REQUIRES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"{name} is not installed ({exc})") from None


__all__ = [
    "REQUIRES",
    "TOKEN_VARIABLE",
    "CannotListen",
    "Observer",
    "check_address",
    "is_loopback",
    "parse_address",
    "require",
]
