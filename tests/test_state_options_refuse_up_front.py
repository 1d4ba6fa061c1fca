"""What a new user found with ``run --state`` / ``resume``, each as a kind:

- a checkpoint interval below one tick was accepted, and a tiny one hung the run in the run
  loop (signals unheard): it is refused up front, and the checkpointer never steps its due
  time one interval at a time;
- a run stopped before its first checkpoint left a file that ``run`` refused and ``resume``
  sent back to ``run``: ``--overwrite`` exists, and each message names the next command;
- a scenario file was recorded by the path as typed, so a resume from another folder failed;
- an interrupted run did not say how to carry on.
"""

from __future__ import annotations

import io
import math
import os
import signal
from pathlib import Path

import pytest
import trio
import trio.testing

from spaceactors.checkpoint import StateFile
from spaceactors.checkpoint.driver import Checkpointer
from spaceactors.cli.command import main

SCENARIO = """
from spaceactors import sim

@sim.scenario(duration=60, step=2)
async def little(world):
    await world.add_station("a", (0, 0, 0), sector="x")
"""


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("every", ["1e-300", "1e-9", "0.5", "0.999"])
def test_an_interval_below_one_tick_is_refused_with_one_line(every: str, tmp_path: Path) -> None:
    state = tmp_path / "run.db"
    code, _, err = cli(
        "run", "asteroid-convoy", "--state", state, "--checkpoint-every", every, "--progress",
        "never",
    )  # fmt: skip
    assert code == 2
    assert err.strip().count("\n") == 0, err
    assert "less than one tick" in err
    assert "give 1 or more" in err  # asteroid-convoy ticks every simulated second
    assert not state.exists()


@pytest.mark.parametrize("every", [1e-300, 1e-12, 1e-6, 0.3, 7.0])
def test_the_checkpointer_works_out_its_next_time_at_any_interval(every: float) -> None:
    """At any interval and clock reading, the next due time lies strictly after now, at a
    whole number of intervals from the last (where the float precision allows)."""
    checkpointer = Checkpointer(every, lambda doc: None)
    for due, now in [(0.0, 0.0), (0.0, 1e9), (5.0, 4.0), (1e6, 1e6 + 0.5), (3.0, 3.0)]:
        after = checkpointer._next(due, now)
        assert after > now
        if after > math.nextafter(now, math.inf):  # representable: on the grid
            steps = round((after - due) / every)
            assert abs(after - (due + steps * every)) <= 4 * math.ulp(max(now, 1.0))


async def test_a_tiny_interval_takes_a_checkpoint_each_quiet_moment_and_the_run_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    taken: list[float] = []
    checkpointer = Checkpointer(1e-300, lambda doc: taken.append(trio.current_time()))
    with trio.move_on_after(10):
        checkpointer.attach(dict)
        for _ in range(1000):
            await trio.sleep(1.0)
    checkpointer.detach()
    assert taken == pytest.approx([float(t) for t in range(1, len(taken) + 1)])
    assert len(taken) >= 9


def test_a_run_stopped_before_its_first_checkpoint_can_be_run_again(tmp_path: Path) -> None:
    scenario = tmp_path / "little.py"
    scenario.write_text(SCENARIO)
    state = tmp_path / "run.db"
    StateFile.create(
        state,
        scenario="little",
        seed=0,
        code="x",
        info={
            "source": str(scenario),
            "duration": 60.0,
            "every": 10.0,
        },
    ).close()  # fmt: skip  (a run that stopped before its first checkpoint)
    code, _, err = cli("resume", state)
    assert code == 2
    assert "no checkpoint yet" in err
    assert f"spaceactors run {scenario} --seed 0 --duration 60.0 --state {state} --overwrite" in err
    code, _, err = cli("run", scenario, "--state", state, "--progress", "never")
    assert code == 2
    assert "--overwrite" in err  # refused, naming the way out
    code, _, err = cli("run", scenario, "--state", state, "--overwrite", "--progress", "never")
    assert code == 0, err
    with StateFile.open(state) as kept:
        assert kept.latest() is not None


def test_overwrite_needs_a_state_file(tmp_path: Path) -> None:
    code, _, err = cli("run", "asteroid-convoy", "--overwrite", "--progress", "never")
    assert code == 2
    assert "--overwrite needs --state FILE" in err


def test_a_scenario_file_resumes_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "little.py").write_text(SCENARIO)
    monkeypatch.chdir(tmp_path / "work")
    code, whole, err = cli("run", "little.py", "--state", "run.db", "--progress", "never")
    assert code == 0, err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = cli("resume", tmp_path / "work" / "run.db", "--progress", "never")
    assert code == 0, err
    assert out.splitlines()[1:] == whole.splitlines()[1:]
    assert os.getcwd() == str(elsewhere)


def test_keep_checkpoints_below_one_is_refused_like_any_other_bad_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in ("0", "-3"):
        with pytest.raises(SystemExit) as exited:
            cli("run", "asteroid-convoy", "--state", tmp_path / "r.db", "--keep-checkpoints", value)
        assert exited.value.code == 2
        assert "must be a whole number from 1 to 1,000,000" in capsys.readouterr().err


def test_an_interrupted_run_with_a_state_file_says_how_to_carry_on(tmp_path: Path) -> None:
    from tests.test_cli_signals import Command

    command = Command(
        "run", "trade-route", "--duration", "100000", "--progress", "always",
        "--progress-every", "0.2", "--state", "run.db", "--checkpoint-every", "100", cwd=tmp_path,
    )  # fmt: skip
    command.wait_for(b"msg/s")  # under way, its first checkpoints kept
    command.send(signal.SIGINT)
    exit_code, _, last = command.finish()
    assert exit_code == 130
    assert last.startswith("spaceactors: interrupted by SIGINT at t=")
    assert last.endswith("; carry on with: spaceactors resume run.db")


def test_a_resumed_run_s_speed_counts_only_what_it_simulated_itself() -> None:
    from spaceactors import sim
    from spaceactors.cli.progress import eta, speed

    fresh = sim.Progress(
        sim_time=600.0, duration=1200.0, messages=0, actors=1, restarts=0, wall_seconds=6.0
    )
    resumed = sim.Progress(
        sim_time=600.0, duration=1200.0, messages=0, actors=1, restarts=0, wall_seconds=1.5,
        origin=450.0,
    )  # fmt: skip
    assert speed(fresh) == 100.0
    assert speed(resumed) == 100.0  # 150 simulated s in 1.5 s, not 600 in 1.5
    assert eta(resumed) == 6.0

