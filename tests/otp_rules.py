"""OTP's restart rule as a table, shared by the pure-policy and the runtime tests."""

from __future__ import annotations

import spaceactors as sa

# (restart type, how the incarnation ended, is it restarted?)
RESTART_MATRIX = [
    (sa.Restart.PERMANENT, "normal", True),
    (sa.Restart.PERMANENT, "shutdown", True),
    (sa.Restart.PERMANENT, "error", True),
    (sa.Restart.TRANSIENT, "normal", False),
    (sa.Restart.TRANSIENT, "shutdown", False),
    (sa.Restart.TRANSIENT, "error", True),
    (sa.Restart.TEMPORARY, "normal", False),
    (sa.Restart.TEMPORARY, "shutdown", False),
    (sa.Restart.TEMPORARY, "error", False),
]
