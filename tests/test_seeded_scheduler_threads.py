"""`seeded_scheduler` seeds Trio's process-wide scheduler generator for the run's thread only:
another thread's draws (a Trio run of its own, the observation server's) leave the run's
sequence alone, and a `seeded_scheduler` nested in the run's thread seeds it again."""

from __future__ import annotations

import random
import threading

from trio._core import _run as trio_run_internals

import spaceactors as sa


def draws(n: int = 5) -> list[int]:
    return [trio_run_internals._r.getrandbits(32) for _ in range(n)]


def expected(seed: int, n: int = 5) -> list[int]:
    reference = random.Random(f"spaceactors/{seed}")
    return [reference.getrandbits(32) for _ in range(n)]


def test_another_threads_draws_leave_the_runs_sequence_alone() -> None:
    with sa.seeded_scheduler(7):
        first = draws(2)
        other: list[int] = []
        thread = threading.Thread(target=lambda: other.extend(draws(50)))
        thread.start()
        thread.join()
        batch = [1, 2, 3, 4, 5, 6]
        trio_run_internals._r.shuffle(batch)
        rest = draws(3)
    reference = random.Random("spaceactors/7")
    assert first == [reference.getrandbits(32) for _ in range(2)]
    same = [1, 2, 3, 4, 5, 6]
    reference.shuffle(same)
    assert batch == same
    assert rest == [reference.getrandbits(32) for _ in range(3)]
    assert other != expected(7, 52)[2:]  # not the run's sequence, where it stood


def test_a_nested_seeded_scheduler_seeds_again_and_puts_back() -> None:
    with sa.seeded_scheduler(1):
        before = draws(3)
        with sa.seeded_scheduler(2):
            assert draws() == expected(2)
        after = draws(2)  # the outer run's sequence goes on where it was
    assert before + after == expected(1)
