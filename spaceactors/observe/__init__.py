"""The observation server (extra ``spaceactors[observe]``): ``/metrics`` for Prometheus,
``/status`` (the supervision tree as JSON), ``/events`` (server-sent lifecycle events),
``/control`` (pause, resume, step, speed) and a dashboard at ``/``.

Start it with ``open_system(observe="127.0.0.1:0")`` or ``spaceactors run --observe``; see
docs/observing.md. The engine's core imports nothing from here.
"""

from spaceactors.observe.server import (
    TOKEN_VARIABLE,
    CannotListen,
    Observer,
    check_address,
    is_loopback,
    parse_address,
)

__all__ = [
    "TOKEN_VARIABLE",
    "CannotListen",
    "Observer",
    "check_address",
    "is_loopback",
    "parse_address",
]
