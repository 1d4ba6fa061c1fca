"""The `spaceactors` command."""

from __future__ import annotations

import io

import pytest

from spaceactors.cli import main


def test_demo_shows_a_docking_exchange_and_a_rejected_payload() -> None:
    out = io.StringIO()
    assert main(["demo"], out=out) == 0
    text = out.getvalue()
    assert "RequestDocking" in text
    assert "DockingPermission" in text
    assert "rejected a hostile payload" in text


def test_unknown_command_exits_with_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["teleport"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
