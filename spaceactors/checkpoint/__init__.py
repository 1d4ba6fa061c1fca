"""Checkpoints and resume: the state file (`StateFile`) and the run's captured state.

The core imports this package only when a run checkpoints or resumes.
"""

from spaceactors.checkpoint.records import Checkpoint, StateMeta, TraceSegment
from spaceactors.checkpoint.store import StateFile

__all__ = ["Checkpoint", "StateFile", "StateMeta", "TraceSegment"]
