"""The Hypothesis settings profile for fault tests, registered as ``"spaceactors-faults"``.

Importing `spaceactors.testing` registers it, and so does the pytest plugin that ships with the
package (before Hypothesis reads ``--hypothesis-profile``). Load it for a whole run with
``pytest --hypothesis-profile=spaceactors-faults`` (or ``settings.load_profile(FAULT_PROFILE)``
in a ``conftest.py``), or for one test with ``@settings(FAULT_SETTINGS)``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

FAULT_PROFILE = "spaceactors-faults"
"""The name the fault-test profile is registered under."""

FAULT_SETTINGS = settings(
    # A virtual-time run that waits out retries and backoffs takes real milliseconds that vary
    # with the machine: a deadline would flag work, not a bug.
    deadline=None,
    # Each example runs a whole actor system: fewer, richer examples than Hypothesis' 100.
    max_examples=50,
    suppress_health_check=[
        # The virtual clock is a function-scoped fixture that every example shares, on purpose.
        HealthCheck.function_scoped_fixture,
        # Fault plans and step lists are large draws; on a busy machine they pass its limit.
        HealthCheck.too_slow,
    ],
    # A failure also prints @reproduce_failure(...), which replays it without the database.
    print_blob=True,
    # No "explain" phase: the lines it finds "only run by failing examples" are the Trio and
    # pytest-trio internals that carry a failure, and it runs more whole systems to say so.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
"""The settings of the ``"spaceactors-faults"`` profile: ``deadline=None``, ``max_examples=50``,
the health checks virtual-time tests trip (``function_scoped_fixture``, ``too_slow``) suppressed,
``print_blob=True``, and every phase but ``explain``."""

settings.register_profile(FAULT_PROFILE, FAULT_SETTINGS)
