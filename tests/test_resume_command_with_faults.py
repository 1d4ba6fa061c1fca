"""``spaceactors run --faults PLAN --state FILE`` keeps the plan in its state file:
``spaceactors resume FILE`` carries on under the same plan and ends as the run did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import spaceactors as sa

COMMAND = [sys.executable, "-m", "spaceactors"]
PLAN = sa.FaultPlan([sa.DelayMessages(probability=0.5, minimum=0.1, maximum=2.0)])


def spaceactors(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def test_resume_runs_under_the_plan_the_run_was_started_with(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_bytes(PLAN.to_json())
    run = ["run", "distress-rescue", "--duration", "300", "--progress", "never"]
    done = spaceactors(*run, "--faults", "plan.json", "--state", "run.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "plan.json").unlink()  # the state file holds the plan: the file is not read
    resumed = spaceactors("resume", "run.db", "--progress", "never", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[1:] == done.stdout.splitlines()[1:]
    plain = spaceactors(*run, cwd=tmp_path)
    assert plain.stdout.splitlines()[1:] != done.stdout.splitlines()[1:]  # the plan mattered
