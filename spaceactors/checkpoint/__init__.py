"""Checkpoints and resume: a seeded virtual-time run saved at a quiescent point and continued
in another process as if it had never stopped (docs/long-runs.md)."""
