"""The supervisor's rulebook as pure functions: OTP restart rules, the intensity window, backoff."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from otp_rules import RESTART_MATRIX

import spaceactors as sa
from spaceactors.policy import (
    NORMAL_EXIT,
    SHUTDOWN_EXIT,
    add_restart,
    failed,
    restart_group,
    should_restart,
    validate_intensity,
    validate_shutdown,
)

# --- which exits restart which children ---------------------------------------------------


@pytest.mark.parametrize(("restart", "exit_name", "restarted"), RESTART_MATRIX)
def test_should_restart_follows_otp(restart: sa.Restart, exit_name: str, restarted: bool) -> None:
    exits = {"normal": NORMAL_EXIT, "shutdown": SHUTDOWN_EXIT, "error": failed(RuntimeError())}
    assert should_restart(restart, exits[exit_name]) is restarted


def test_only_a_failure_is_an_abnormal_exit() -> None:
    error = RuntimeError("boom")
    assert failed(error).abnormal
    assert failed(error).error is error
    assert not NORMAL_EXIT.abnormal
    assert not SHUTDOWN_EXIT.abnormal


# --- the sliding restart-intensity window ------------------------------------------------


def _feed(times: list[float], max_restarts: int, within: float) -> list[bool]:
    """Feed crash times to `add_restart` as the supervisor does; stop at the first refusal."""
    history: tuple[float, ...] = ()
    verdicts = []
    for now in times:
        history, allowed = add_restart(history, now, max_restarts, within)
        verdicts.append(allowed)
        if not allowed:
            break
    return verdicts


def test_r_plus_one_restarts_inside_the_window_give_up_after_exactly_r() -> None:
    assert _feed([0.0, 1.0, 2.0, 3.0], max_restarts=3, within=5.0) == [True, True, True, False]


def test_simultaneous_restarts_count_one_by_one() -> None:
    assert _feed([7.0] * 5, max_restarts=4, within=1.0) == [True] * 4 + [False]


def test_max_restarts_zero_gives_up_at_the_first_restart() -> None:
    assert _feed([0.0], max_restarts=0, within=5.0) == [False]


def test_restarts_spaced_wider_than_the_window_go_on_forever() -> None:
    times = [6.0 * i for i in range(20)]
    assert _feed(times, max_restarts=3, within=5.0) == [True] * 20


def test_a_restart_exactly_within_seconds_old_is_still_in_the_window() -> None:
    # OTP's inPeriod is `Now =< Then + Period`: the window [now - within, now] is closed.
    assert _feed([0.0, 5.0], max_restarts=1, within=5.0) == [True, False]
    assert _feed([0.0, 5.125, 10.25], max_restarts=1, within=5.0) == [True] * 3


def test_add_restart_drops_what_left_the_window_from_the_history() -> None:
    history, allowed = add_restart((0.0, 1.0, 6.0), 7.0, max_restarts=3, within=5.0)
    assert allowed
    assert history == (6.0, 7.0)


def _model_gives_up_at(times: list[float], max_restarts: int, within: float) -> int | None:
    """Index of the first restart refused, by brute force over every window [t - within, t].

    A window holding the most restarts can always be slid right until its end meets a
    restart, so checking the windows that end at each restart is enough; a restart is
    refused when the window ending at it (counting itself and every earlier one) holds more
    than `max_restarts`.
    """
    for k, end in enumerate(times):
        inside = [t for t in times[: k + 1] if end - within <= t <= end]
        if len(inside) > max_restarts:
            return k
    return None


# Times are multiples of 1/8 and `within` a multiple of 1/4, so every comparison is exact.
eighths = st.integers(min_value=0, max_value=80).map(lambda n: n / 8)


@given(
    gaps=st.lists(eighths, min_size=1, max_size=40),
    max_restarts=st.integers(min_value=0, max_value=6),
    within=st.integers(min_value=1, max_value=40).map(lambda n: n / 4),
    start=st.integers(min_value=0, max_value=10_000),
)
def test_add_restart_gives_up_iff_some_window_holds_more_than_max_restarts(
    gaps: list[float], max_restarts: int, within: float, start: int
) -> None:
    times: list[float] = []
    now = float(start)
    for gap in gaps:
        now += gap
        times.append(now)
    verdicts = _feed(times, max_restarts, within)
    gives_up_at = _model_gives_up_at(times, max_restarts, within)
    if gives_up_at is None:
        assert verdicts == [True] * len(times)
    else:
        assert verdicts == [True] * gives_up_at + [False]


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_exactly_up_to_the_maximum() -> None:
    backoff = sa.Backoff(initial=0.1, maximum=1.0)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(7)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0], abs=1e-12)


@given(attempt=st.integers(min_value=0, max_value=5000), seed=st.integers())
def test_backoff_jitter_stays_within_its_fraction_of_the_capped_delay(
    attempt: int, seed: int
) -> None:
    backoff = sa.Backoff(initial=0.1, maximum=1.0, jitter=0.2)
    base = min(0.1 * 2.0 ** min(attempt, 64), 1.0)
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0.8 * base - 1e-12 <= delay <= 1.2 * base + 1e-12


@pytest.mark.parametrize("attempt", [1023, 1024, 5000])
def test_backoff_after_thousands_of_restarts_waits_the_maximum(attempt: int) -> None:
    # A child that crash-loops slower than the intensity window keeps counting attempts.
    backoff = sa.Backoff(initial=0.1, maximum=1.0)
    assert backoff.delay(attempt, random.Random(0)) == 1.0


def test_backoff_jitter_is_reproducible_from_the_seed() -> None:
    backoff = sa.Backoff(initial=0.1, maximum=1.0, jitter=0.2)

    def delays(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [backoff.delay(n, rng) for n in range(10)]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)


def test_backoff_quiet_period_defaults_to_the_maximum() -> None:
    assert sa.Backoff(initial=0.1, maximum=3.0).quiet_period == 3.0
    assert sa.Backoff(initial=0.1, maximum=3.0, reset_after=10.0).quiet_period == 10.0


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: sa.Backoff(initial=1.0, maximum=0.5), "maximum"),
        (lambda: sa.Backoff(initial=0.0, maximum=1.0), "initial"),
        (lambda: sa.Backoff(initial=0.1, maximum=math.inf), "maximum"),
        (lambda: sa.Backoff(initial=0.1, maximum=1.0, jitter=1.0), "jitter"),
        (lambda: sa.Backoff(initial=0.1, maximum=1.0, jitter=-0.1), "jitter"),
        (lambda: sa.Backoff(initial=0.1, maximum=1.0, reset_after=0.0), "reset_after"),
    ],
)
def test_invalid_backoff_names_the_field(build: object, field: str) -> None:
    with pytest.raises(sa.InvalidSpec, match=rf"Backoff\.{field}"):
        build()  # type: ignore[operator]


# --- which children a failure restarts ------------------------------------------------------

ORDER = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("strategy", "failed_child", "group"),
    [
        (sa.Strategy.ONE_FOR_ONE, "b", ["b"]),
        (sa.Strategy.ONE_FOR_ALL, "b", ["a", "b", "c", "d"]),
        (sa.Strategy.REST_FOR_ONE, "b", ["b", "c", "d"]),
        (sa.Strategy.REST_FOR_ONE, "a", ["a", "b", "c", "d"]),
        (sa.Strategy.REST_FOR_ONE, "d", ["d"]),
    ],
)
def test_restart_group_follows_the_strategy(
    strategy: sa.Strategy, failed_child: str, group: list[str]
) -> None:
    assert restart_group(strategy, ORDER, failed_child) == group


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_restarts", "within", "field"),
    [
        (-1, 5.0, "max_restarts"),
        (True, 5.0, "max_restarts"),
        (1.5, 5.0, "max_restarts"),
        (3, 0.0, "within"),
        (3, -1.0, "within"),
        (3, math.nan, "within"),
    ],
)
def test_invalid_intensity_names_the_field(max_restarts: int, within: float, field: str) -> None:
    with pytest.raises(sa.InvalidSpec, match=field):
        validate_intensity(max_restarts, within)


@pytest.mark.parametrize("shutdown", [-1, -0.5, math.nan, True, "5"])
def test_invalid_shutdown_is_rejected(shutdown: object) -> None:
    with pytest.raises(sa.InvalidSpec, match="shutdown"):
        validate_shutdown(shutdown)  # type: ignore[arg-type]


@pytest.mark.parametrize("shutdown", [0, 2.5, math.inf, sa.BRUTAL_KILL])
def test_valid_shutdown_policies_are_accepted(shutdown: object) -> None:
    validate_shutdown(shutdown)  # type: ignore[arg-type]
