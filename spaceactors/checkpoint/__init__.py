"""Checkpoints and resume: a seeded virtual-time run saved at a quiescent point and continued
in another process as if it had never stopped (docs/long-runs.md).

`values` converts actors' state and messages to plain data and back.
"""

from spaceactors.checkpoint.values import restore_actor, restore_value, save_actor, save_value

__all__ = ["restore_actor", "restore_value", "save_actor", "save_value"]
