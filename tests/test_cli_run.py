"""`spaceactors run` and `spaceactors list`: summaries, exit codes and one-line errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import spaceactors as sa
from spaceactors.cli import main

FAILING = """
from spaceactors import sim

@sim.scenario(duration=60)
async def lonely(world):
    await world.add_station("x", (0, 0, 0), sector="a")
    world.expect("a docking happened", lambda s: s.dockings > 0)
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def without_timing(summary: str) -> str:
    return "\n".join(line for line in summary.splitlines() if "simulated in" not in line)


def test_list_names_every_shipped_scenario() -> None:
    code, out, _ = run("list")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["asteroid-convoy", "distress-rescue", "large-fleet", "trade-route"]


def test_run_prints_a_summary_and_exits_0_when_every_expectation_holds() -> None:
    code, out, err = run("run", "distress-rescue", "--seed", "1")
    assert code == 0, out
    assert "expectations 3/3 met" in out
    assert "3 calls, 3 rescues, 0 unanswered" in out
    assert "DistressSignal" not in err  # no progress bar when stderr is not a terminal


def test_the_same_seed_gives_the_same_summary() -> None:
    first = run("run", "trade-route", "--seed", "5", "--duration", "900")[1]
    second = run("run", "trade-route", "--seed", "5", "--duration", "900")[1]
    assert without_timing(first) == without_timing(second)


def test_a_failed_expectation_exits_1_and_says_which(tmp_path: Path) -> None:
    script = tmp_path / "lonely.py"
    script.write_text(FAILING)
    code, out, _ = run("run", str(script))
    assert code == 1
    assert "FAIL a docking happened" in out


def test_the_progress_bar_shows_time_rate_actors_and_restarts() -> None:
    _, _, err = run("run", "trade-route", "--duration", "600", "--progress", "always")
    assert "600/600 s" in err
    assert "msg/s" in err
    assert "15 actors" in err


def test_a_trace_file_and_a_fault_plan_are_used(tmp_path: Path) -> None:
    plan = tmp_path / "faults.json"
    plan.write_bytes(sa.FaultPlan([sa.DropMessages(probability=0.05)]).to_json())
    trace = tmp_path / "run.jsonl"
    code, out, _ = run(
        "run", "trade-route", "--duration", "600", "--trace", str(trace), "--faults", str(plan)
    )
    assert code in (0, 1), out
    kinds = {event.kind for event in sa.load_trace(trace)}
    assert {sa.EventKind.SEND, sa.EventKind.HANDLE, sa.EventKind.DROP} <= kinds


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nowhere"], "no scenario named 'nowhere' (shipped: asteroid-convoy"),
        (["run", "missing.py"], "no scenario file at missing.py"),
        (["run", "trade-route", "--faults", "nope.json"], "cannot read the fault plan nope.json"),
        (["run", "trade-route", "--trace", "/no/such/dir/t.jsonl"], "cannot write the trace"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert err.startswith("spaceactors: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert out == ""


def test_a_script_with_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("from spaceactors import sim\n\nasync def oops(:\n")
    code, _, err = run("run", str(script))
    assert code == 2
    assert f"{script}:3: syntax error" in err
    assert err.count("\n") == 1


def test_a_script_that_fails_while_building_names_its_line(tmp_path: Path) -> None:
    script = tmp_path / "lost.py"
    script.write_text(
        "from spaceactors import sim\n\n@sim.scenario(duration=10)\nasync def lost(world):\n"
        "    await world.add_ship('s', (0, 0, 0), route=('nowhere',))\n"
    )
    code, _, err = run("run", str(script))
    assert code == 2
    assert f"{script}:5: ScenarioError: ship 's' has unknown stations" in err


def test_a_fault_plan_that_is_not_one_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "faults.json"
    plan.write_text('{"schema": 1, "type": "FaultPlan", "body": {"rules": [{"kind": "melt"}]}}')
    code, _, err = run("run", "trade-route", "--faults", str(plan))
    assert code == 2
    assert "is not a fault plan" in err
    assert "unknown kind 'melt'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "trade-route", "--duration", "-5"], "must be a positive number of seconds"),
        (["run", "trade-route", "--clock", "moon"], "invalid choice: 'moon'"),
        (["run", "trade-route", "--seed", "x"], "argument --seed: not a whole number"),
        (["run"], "the following arguments are required: scenario"),
    ],
)
def test_bad_options_get_one_line_and_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
