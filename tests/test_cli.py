"""The `spaceactors` command."""

from __future__ import annotations

import io

import pytest

from spaceactors.cli import main


def test_demo_runs_a_supervised_docking_scenario_and_shows_the_wire() -> None:
    out = io.StringIO()
    assert main(["demo"], out=out) == 0
    text = out.getvalue()
    assert "6 dockings" in text
    assert "ship-2 engine failure" in text
    assert "ship-2 restarted by its supervisor" in text
    assert "1 crash restarted by the fleet supervisor" in text
    assert "RequestDocking" in text
    assert "rejected a hostile payload" in text


def test_demo_is_repeatable_for_a_seed() -> None:
    runs = []
    for _ in range(3):
        out = io.StringIO()
        main(["demo", "--seed", "3"], out=out)
        runs.append(out.getvalue())
    assert runs[0] == runs[1] == runs[2]


def test_unknown_command_exits_with_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["teleport"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
