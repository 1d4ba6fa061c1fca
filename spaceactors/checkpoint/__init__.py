"""Checkpoints and resume: a seeded virtual-time run saved at a quiescent point and continued
in another process as if it had never stopped (docs/long-runs.md).

`StateFile` is the file a run keeps them in; `values` converts actors' state and messages to
plain data and back. The core imports this package only when a run checkpoints or resumes.
"""

from spaceactors.checkpoint.store import (
    APPLICATION_ID,
    FORMAT_VERSION,
    KEEP,
    Checkpoint,
    StateFile,
    StateMeta,
    TraceSegment,
)
from spaceactors.checkpoint.values import restore_actor, restore_value, save_actor, save_value

__all__ = [
    "APPLICATION_ID",
    "FORMAT_VERSION",
    "KEEP",
    "Checkpoint",
    "StateFile",
    "StateMeta",
    "TraceSegment",
    "restore_actor",
    "restore_value",
    "save_actor",
    "save_value",
]
