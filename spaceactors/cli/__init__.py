"""The ``spaceactors`` command (``python -m spaceactors``): see docs/cli.md."""

from spaceactors.cli.command import main
from spaceactors.cli.report import render_summary

__all__ = ["main", "render_summary"]
