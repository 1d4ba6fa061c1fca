"""The run's own output: a rich progress bar on a terminal (sim time, speed, restarts, ETA),
plain lines every --progress-every seconds elsewhere (never \\r frames), the summary's top
restarters and trace hash, and --summary-json with the whole summary."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path
from typing import Any

import pytest

import spaceactors as sa
from spaceactors import sim
from spaceactors.cli import main
from spaceactors.cli.progress import ProgressDisplay, clock_text, eta, speed


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*argv: str, err: io.StringIO | None = None) -> tuple[int, str, str]:
    out = io.StringIO()
    err = io.StringIO() if err is None else err
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_always_to_a_file_writes_plain_lines_never_carriage_returns() -> None:
    code, out, err = run(
        "run", "trade-route", "--progress", "always", "--progress-every", "1e-9"
    )
    assert code == 0, out
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("trade-route: t=")]
    assert len(lines) >= 50  # about one per update: the interval always passed
    assert max(len(line) for line in lines) < 200
    last = lines[-1]
    assert last.startswith("trade-route: t=3,600/3,600 s (100%), speed ")
    assert "restarts, ETA 0 s" in last
    assert "1 restarts" in last  # the scenario's sabotaged hauler


def test_the_default_interval_writes_the_last_state_once_for_a_short_run() -> None:
    code, _, err = run("run", "trade-route", "--progress", "always")
    assert code == 0
    lines = err.splitlines()
    progress = [line for line in lines if line.startswith("trade-route: t=")]
    assert len(progress) == 1  # the run took far less than 10 s: only the closing line
    assert progress[0].startswith("trade-route: t=3,600/3,600 s (100%)")


def fake_progress(t: float, wall: float, restarts: int = 0) -> sim.Progress:
    return sim.Progress(
        sim_time=t, duration=1000.0, messages=10, actors=3, restarts=restarts, wall_seconds=wall
    )


@pytest.mark.parametrize("every", [1.0, 5.0, 10.0])
def test_a_plain_line_comes_every_n_seconds_of_wall_time(every: float) -> None:
    now = [0.0]
    err = io.StringIO()
    display = ProgressDisplay(err, "run", terminal=False, every=every, clock=lambda: now[0])
    for step in range(1, 101):  # one update every 0.5 s of wall time, 50 s in all
        now[0] = step * 0.5
        display(fake_progress(step * 10.0, now[0]))
    display.close()
    lines = err.getvalue().splitlines()
    assert len(lines) == int(50 / every)
    assert lines[0].startswith(f"run: t={every * 20:,.0f}/1,000 s")
    assert lines[-1].startswith("run: t=1,000/1,000 s (100%), speed 20x")


def test_speed_and_eta_come_from_the_run_so_far() -> None:
    progress = fake_progress(250.0, 5.0)
    assert speed(progress) == 50.0
    assert eta(progress) == 15.0
    assert speed(fake_progress(0.0, 0.0)) is None
    assert eta(fake_progress(0.0, 0.0)) is None
    assert [clock_text(s) for s in (None, 3.2, 187.0, 3723.0)] == ["?", "3 s", "3:07", "1:02:03"]


def test_a_terminal_gets_a_rich_bar_with_speed_restarts_and_eta() -> None:
    err = Terminal()
    code, out, text = run("run", "trade-route", "--progress", "auto", err=err)
    assert code == 0, out
    assert "\x1b[" in text  # redrawn in place by rich
    final = text.replace("\r", "\n").splitlines()[-3:]
    shown = " ".join(final)
    assert "trade-route" in shown
    assert "t=3,600/3,600 s" in shown
    assert "1 restarts" in shown
    assert "ETA 0 s" in shown
    assert "WARNING spaceactors.supervisor: user/hauler-3 restarted at t=1200 s" in text


def test_a_full_stderr_ends_the_display_never_the_run() -> None:
    class Full(Terminal):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    code, out, _ = run("run", "trade-route", "--progress", "always", err=Full())
    assert code == 0
    assert "  expectations 4/4 met" in out


def restarts_block(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  restarts"))
    return [line for line in lines[start + 1 :] if line.startswith("    ") and "last:" in line]


@pytest.mark.parametrize("every", [7, 25, 60])
def test_the_summary_lists_the_actors_that_restarted_most(tmp_path: Path, every: int) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes(sa.FaultPlan([sa.CrashActor(actors=["hauler-*"], every=every)]).to_json())
    summary_file = tmp_path / "summary.json"
    code, out, err = run(
        "run", "trade-route", "--faults", str(plan), "--summary-json", str(summary_file)
    )
    assert code in (0, 1)
    document = json.loads(summary_file.read_text())
    per_actor: dict[str, int] = {}
    for line in err.splitlines():
        if " restarted at t=" in line:
            path = line.split(": ", 1)[1].split(" restarted")[0]
            per_actor[path.rsplit("/", 1)[-1]] = per_actor.get(path.rsplit("/", 1)[-1], 0) + 1
    want = sorted(per_actor.items(), key=lambda item: (-item[1], item[0]))[:5]
    shown = [
        (line.split()[0], int(line.split()[1].replace(",", ""))) for line in restarts_block(out)
    ]
    assert shown == want
    assert [(r["name"], r["restarts"]) for r in document["top_restarters"]] == want
    assert all(r["last_cause"] for r in document["top_restarters"])
    assert document["restarts"] == sum(per_actor.values())


def test_the_summary_json_holds_the_whole_summary(tmp_path: Path) -> None:
    trace, summary_file = tmp_path / "run.jsonl", tmp_path / "summary.json"
    code, out, _ = run(
        "run", "trade-route", "--trace", str(trace), "--summary-json", str(summary_file)
    )
    assert code == 0
    document: dict[str, Any] = json.loads(summary_file.read_text())
    assert document["version"] == 1
    fields = {f.name for f in sim.Summary.__attrs_attrs__}  # type: ignore[attr-defined]
    assert set(document) == fields | {"version", "passed", "not_checked"}
    assert document["passed"] is True
    assert document["trace_hash"] == sa.trace_hash(sa.load_trace(trace))
    assert f"  trace hash   {document['trace_hash']}" in out
    assert f"{document['ship_updates']:,} ship updates" in out
    assert all(set(e) == {"description", "held", "why"} for e in document["expectations"])


def test_a_run_without_a_trace_says_how_to_get_its_hash() -> None:
    _, out, _ = run("run", "trade-route", "--duration", "600")
    assert "  trace hash   - (not recorded: --trace FILE records the trace)" in out


def test_a_summary_json_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    target = tmp_path / "no" / "s.json"
    code, out, err = run("run", "trade-route", "--summary-json", str(target))
    assert (code, out) == (2, "")
    assert err == (
        f"spaceactors: error: cannot write the summary {target}: no directory {target.parent}\n"
    )


def test_an_interrupted_run_still_writes_its_summary_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary_file = tmp_path / "summary.json"
    real = sim.run_scenario

    async def interrupted(*args: Any, **kwargs: Any) -> sim.Summary:
        signal.raise_signal(signal.SIGINT)  # Ctrl-C as the run starts
        return await real(*args, **kwargs)

    monkeypatch.setattr(sim, "run_scenario", interrupted)
    code, out, err = run("run", "trade-route", "--summary-json", str(summary_file))
    assert code == 130
    assert "interrupted at t=" in out
    document = json.loads(summary_file.read_text())
    assert document["interrupted_at"] is not None
    assert document["passed"] is False
    at = document["interrupted_at"]
    assert err.endswith(f"spaceactors: interrupted by SIGINT at t={at:,.1f} s of 3,600 s\n")
