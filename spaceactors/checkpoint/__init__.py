"""Checkpoints and resume: the state file (`StateFile`) and the run's captured state.

The core imports this package only when a run checkpoints or resumes.
"""

from spaceactors.checkpoint.sqlitefile import APPLICATION_ID, FORMAT_VERSION
from spaceactors.checkpoint.store import (
    KEEP,
    Checkpoint,
    StateFile,
    StateMeta,
    TraceSegment,
)

__all__ = [
    "APPLICATION_ID",
    "FORMAT_VERSION",
    "KEEP",
    "Checkpoint",
    "StateFile",
    "StateMeta",
    "TraceSegment",
]
