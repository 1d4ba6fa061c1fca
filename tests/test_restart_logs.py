"""Each restart is one log line: simulated time, the actor's path, its restart count and the
cause (the crash, or the sibling it was restarted with); the command shows them one line each
on stderr (tracebacks only with -v) and writes them as JSON lines with --log-json."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.cli import main


class Station(sa.Actor):
    """Crashes on every message (the issue's station: 118 restarts, no sign of it)."""

    async def handle(self, message: object) -> object:
        raise ValueError(f"fuel < 0 while handling {message!r}")


class Quiet(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


def restart_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "restart"]


@pytest.mark.parametrize("crashes", [1, 7, 118])
async def test_every_restart_is_one_line_with_time_path_count_and_cause(
    crashes: int, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="spaceactors")
    async with sa.open_system(seed=1, trace=True, max_restarts=1000, within=1.0) as system:
        ports = await system.spawn_supervisor("ports", max_restarts=1000, within=1.0)
        ref = await ports.start_child(sa.ChildSpec("station:ceres", Station))
        for n in range(crashes):
            await trio.sleep(30.0)  # 55 simulated minutes for 118 of them
            await ref.send(n)
        await trio.sleep(1.0)
        assert system.trace is not None
        restarts = [e for e in system.trace.events if e.kind is sa.EventKind.RESTART]
    records = restart_records(caplog)
    assert len(records) == len(restarts) == crashes
    for count, (record, event) in enumerate(zip(records, restarts, strict=True), start=1):
        text = record.getMessage()
        assert "\n" not in text
        assert record.exc_info is None
        assert record.levelno == logging.WARNING
        assert text == (
            f"user/ports/station:ceres restarted at t={event.time:.6g} s (restart {count}): "
            f"ValueError: fuel < 0 while handling {count - 1}"
        )
        assert record.actor == "user/ports/station:ceres"  # type: ignore[attr-defined]
        assert record.restarts == count  # type: ignore[attr-defined]
        assert record.sim_time == event.time  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("strategy", "bystanders"),
    [
        (sa.Strategy.ONE_FOR_ONE, []),
        (sa.Strategy.ONE_FOR_ALL, ["dock:a", "dock:c"]),
        (sa.Strategy.REST_FOR_ONE, ["dock:c"]),
    ],
)
async def test_a_sibling_restarted_with_a_crash_says_whose(
    strategy: sa.Strategy,
    bystanders: list[str],
    caplog: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,
) -> None:
    caplog.set_level(logging.INFO, logger="spaceactors")
    async with sa.open_system(seed=2) as system:
        docks = await system.spawn_supervisor("docks", strategy=strategy)
        await docks.start_child(sa.ChildSpec("dock:a", Quiet))
        bad = await docks.start_child(sa.ChildSpec("dock:b", Station))
        await docks.start_child(sa.ChildSpec("dock:c", Quiet))
        await trio.sleep(5.0)
        await bad.send("cargo")
        await trio.sleep(1.0)
    lines = {r.actor: r.getMessage() for r in restart_records(caplog)}  # type: ignore[attr-defined]
    assert sorted(lines) == sorted(["user/docks/dock:b", *[f"user/docks/{n}" for n in bystanders]])
    cause = "ValueError: fuel < 0 while handling 'cargo'"
    assert lines["user/docks/dock:b"].endswith(f"(restart 1): {cause}")
    for name in bystanders:
        assert lines[f"user/docks/{name}"].endswith(
            f"(restart 1): restarted with 'dock:b': {cause}"
        )


async def test_a_supervisor_that_gives_up_says_when_and_why(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="spaceactors")
    async with sa.open_system(seed=2, max_restarts=100) as system:
        docks = await system.spawn_supervisor("docks", max_restarts=2, within=60.0)
        bad = await docks.start_child(sa.ChildSpec("dock:b", Station))
        for n in range(3):
            await trio.sleep(1.0)
            await bad.send(n)
        await trio.sleep(1.0)
    (gave_up,) = [r for r in caplog.records if getattr(r, "event", None) == "give_up"]
    assert "gave up at t=3 s" in gave_up.getMessage()
    assert gave_up.cause == "ValueError: fuel < 0 while handling 2"  # type: ignore[attr-defined]
    restarted = [r.actor for r in restart_records(caplog)]  # type: ignore[attr-defined]
    assert restarted == ["user/docks/dock:b", "user/docks/dock:b", "user/docks"]


class Fragile(sa.Actor):
    """Crashes on any message; starts only the first time."""

    starts = 0

    async def on_start(self) -> None:
        Fragile.starts += 1
        if Fragile.starts > 1:
            raise OSError("berth controller offline")

    async def handle(self, message: object) -> object:
        raise ValueError("hull breach")


async def test_a_restart_that_fails_to_start_says_so_with_its_cause(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="spaceactors")
    Fragile.starts = 0
    async with sa.open_system(seed=2, max_restarts=100) as system:
        docks = await system.spawn_supervisor("docks", max_restarts=3, within=60.0)
        ref = await docks.start_child(sa.ChildSpec("dock:f", Fragile))
        await trio.sleep(2.0)
        await ref.send("go")
        await trio.sleep(1.0)
    failed = [r for r in caplog.records if getattr(r, "event", None) == "start_failed"]
    assert failed, "no restart failed to start: the test would prove nothing"
    for record in failed:
        assert record.actor == "user/docks/dock:f"  # type: ignore[attr-defined]
        assert record.cause.startswith("StartFailed: ")  # type: ignore[attr-defined]
        assert "berth controller offline" in record.cause  # type: ignore[attr-defined]
        assert record.getMessage().startswith("restart of user/docks/dock:f failed at t=2 s: ")
    mine = [r for r in restart_records(caplog) if r.actor == "user/docks/dock:f"]  # type: ignore[attr-defined]
    counts = [r.restarts for r in mine]  # type: ignore[attr-defined]
    assert counts == list(range(1, len(counts) + 1))  # each attempt counted, in order
    assert len(counts) == len(failed)


def run(tmp_path: Path, *argv: str, every: int = 40) -> tuple[int, str, str]:
    plan = tmp_path / "plan.json"
    plan.write_bytes(sa.FaultPlan([sa.CrashActor(actors=["hauler-*"], every=every)]).to_json())
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [*argv[:-1], "run", argv[-1], "--duration", "1800", "--faults", str(plan)],
        out=out,
        err=err,
    )
    return code, out.getvalue(), err.getvalue()


def summary_restarts(out: str) -> int:
    (line,) = [line for line in out.splitlines() if line.startswith("  restarts")]
    return int(line.split()[1])


@pytest.mark.parametrize("every", [15, 40, 200])
def test_the_command_shows_one_line_per_restart_and_no_traceback(
    tmp_path: Path, every: int
) -> None:
    code, out, err = run(tmp_path, "trade-route", every=every)
    assert code in (0, 1)
    restarts = summary_restarts(out)
    assert restarts > 0, "the plan crashed nothing: the test would prove nothing"
    lines = err.splitlines()
    restart_lines = [line for line in lines if " restarted at t=" in line]
    assert len(restart_lines) == restarts
    assert all(line.startswith("WARNING spaceactors.supervisor: user/") for line in restart_lines)
    assert "Traceback" not in err
    assert "crashed handling" not in err  # the restart line says why


def test_verbose_adds_the_crashes_and_a_real_crashs_traceback(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "-v", "trade-route")
    assert code in (0, 1)
    assert "injected by fault rule CrashActor" in err  # planned crashes: one line each
    assert "RuntimeError: sabotage aboard hauler-3" in err
    assert "Traceback (most recent call last)" in err  # the scenario's real sabotage
    restart_lines = [line for line in err.splitlines() if " restarted at t=" in line]
    assert len(restart_lines) == summary_restarts(out)


@pytest.mark.parametrize("verbose", [False, True])
def test_log_json_writes_one_object_per_record(tmp_path: Path, verbose: bool) -> None:
    log = tmp_path / "log.jsonl"
    flags = ["-v"] if verbose else []
    code, out, _ = run(tmp_path, *flags, "--log-json", str(log), "trade-route")
    assert code in (0, 1)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    restarts = [r for r in records if r.get("event") == "restart"]
    assert len(restarts) == summary_restarts(out) > 0
    for record in restarts:
        assert set(record) >= {"time", "sim_time", "level", "logger", "message", "actor"}
        assert record["level"] == "WARNING"
        assert record["actor"].startswith("user/hauler-")
        assert record["message"].startswith(f"{record['actor']} restarted at t=")
        assert f"(restart {record['restarts']}): {record['cause']}" in record["message"]
        assert isinstance(record["sim_time"], float)
    crashes = [r for r in records if r.get("event") == "crash"]
    assert len(crashes) >= len(restarts)  # JSON keeps the crash records (INFO on)
    assert any("traceback" in r for r in crashes) == verbose


def test_log_json_to_stderr_replaces_the_text_lines(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "--log-json", "-", "trade-route")
    assert code in (0, 1)
    objects = [json.loads(line) for line in err.splitlines()]
    assert any(o.get("event") == "restart" for o in objects)


def test_a_log_file_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "log.jsonl"
    code, out, err = run(tmp_path, "--log-json", str(missing), "trade-route")
    assert code == 2
    assert out == ""
    assert err == f"spaceactors: error: cannot write the log {missing}: No such file or directory\n"


def test_the_command_leaves_logging_as_it_found_it(tmp_path: Path) -> None:
    logger = logging.getLogger("spaceactors")
    before = (list(logger.handlers), logger.level)
    run(tmp_path, "-v", "--log-json", str(tmp_path / "log.jsonl"), "trade-route")
    assert (list(logger.handlers), logger.level) == before
