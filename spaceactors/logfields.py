"""What the engine's log records carry besides their message, for handlers that want fields.

Every crash, restart, failed restart and give-up is logged with ``extra`` fields (see
`FIELDS`), so a handler (the command's ``--log-json``, say) can write them as data rather than
parse the message:

- ``event``: ``"crash"``, ``"restart"``, ``"start_failed"`` (a restart whose start raised)
  or ``"give_up"``;
- ``actor``: the actor's path (``"user/fleet/ship:1"``);
- ``sim_time``: ``trio.current_time()`` when it happened (seconds; the trace's clock);
- ``restarts``: the actor's restart count, this restart included (restarts only);
- ``cause``: the error, on one line (``"ValueError: fuel < 0"``).
"""

from __future__ import annotations

from spaceactors.checks import describe

FIELDS = ("event", "actor", "sim_time", "restarts", "cause")
"""The ``extra`` fields engine records may carry, in the order handlers show them."""


def actor_path(supervisor_path: str, name: str) -> str:
    """The path logs give a child: its supervisors' names from ``user`` or ``services`` down
    (``"user/fleet/ship:1"``), without the root every path shares."""
    return f"{supervisor_path}/{name}".removeprefix("root/")


def cause_text(error: BaseException | None) -> str:
    """An error as logs show a cause, on one line: ``"ValueError: fuel < 0"`` (its type
    alone when it has no message); never raises."""
    if error is None:
        return "no error"
    try:
        text = str(error)
    except Exception:
        return describe(error)
    name = type(error).__name__
    return f"{name}: {' '.join(text.split())}" if text else name
