"""Checkpoints: a run's whole state saved at a quiescent point, and resumed from.

`values` converts actors' state and messages to plain data and back.
"""

from spaceactors.checkpoint.values import restore_actor, restore_value, save_actor, save_value

__all__ = ["restore_actor", "restore_value", "save_actor", "save_value"]
