"""Helpers for users' own tests (needs ``hypothesis``: ``pip install spaceactors[test]``).

- strategies for every protocol message (`STRATEGIES`, `any_message`, ...),
- strategies for fault plans and crash schedules (`fault_plans`, `crash_schedules`, ...),
- `ActorSystemMachine`, a rule-based state machine that runs an actor system in virtual time,
- case files of failing examples: `replay(path)`, `@cases(folder)` (``spaceactors replay``),
- invariant checks (`assert_exactly_once`, `assert_no_reliable_message_lost`,
  `assert_restarts_within_intensity`, `wait_until_idle`, `assert_no_task_leaked`),
- the Hypothesis settings profile ``"spaceactors-faults"`` for fault tests, registered on import
  (`spaceactors.testing.profiles`).
"""

import spaceactors.testing.profiles  # noqa: F401  (registers the "spaceactors-faults" profile)
from spaceactors.testing.casefile import Case, CaseError
from spaceactors.testing.faults import (
    actor_faults,
    crash_schedules,
    fault_plans,
    message_faults,
    partitions,
    probabilities,
)
from spaceactors.testing.invariants import (
    assert_exactly_once,
    assert_no_reliable_message_lost,
    assert_no_task_leaked,
    assert_restarts_within_intensity,
    busy,
    reliable_outcome,
    task_count,
    wait_until_idle,
)
from spaceactors.testing.machine import ActorSystemMachine, invariant, precondition, rule
from spaceactors.testing.replay import ReplayResult, cases, replay
from spaceactors.testing.strategies import (
    STRATEGIES,
    actor_ids,
    any_message,
    control_commands,
    names,
    ship_messages,
    station_messages,
    system_messages,
    vectors,
)

__all__ = [
    "STRATEGIES",
    "ActorSystemMachine",
    "Case",
    "CaseError",
    "ReplayResult",
    "actor_faults",
    "actor_ids",
    "any_message",
    "assert_exactly_once",
    "assert_no_reliable_message_lost",
    "assert_no_task_leaked",
    "assert_restarts_within_intensity",
    "busy",
    "cases",
    "control_commands",
    "crash_schedules",
    "fault_plans",
    "invariant",
    "message_faults",
    "names",
    "partitions",
    "precondition",
    "probabilities",
    "reliable_outcome",
    "replay",
    "rule",
    "ship_messages",
    "station_messages",
    "system_messages",
    "task_count",
    "vectors",
    "wait_until_idle",
]
