"""The state file (`spaceactors.checkpoint.StateFile`): what it keeps, what it refuses, and that
a process killed with SIGKILL while writing leaves the previous checkpoint intact."""

from __future__ import annotations

import hashlib
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import spaceactors as sa
from spaceactors.checkpoint import StateFile, TraceSegment
from spaceactors.checkpoint.sqlitefile import APPLICATION_ID, FORMAT_VERSION

RUN = {"scenario": "docking", "seed": 7, "code": "abc123"}


def make(path: Path, **options: object) -> StateFile:
    return StateFile.create(path, **{**RUN, **options})  # type: ignore[arg-type]


def refusal(action: Callable[[], object]) -> str:
    with pytest.raises(sa.StateFileError) as caught:
        action()
    text = str(caught.value)
    assert "\n" not in text
    return text


@pytest.fixture
def run_db(tmp_path: Path) -> Path:
    """A state file with three checkpoints and a trace of 30 events in three segments."""
    path = tmp_path / "run.db"
    with make(path, info={"ships": 12}) as state:
        for number in range(3):
            state.append_trace_segment(number * 10, 10, "msgpack", bytes([number]) * 50)
            state.write_checkpoint(60.0 * (number + 1), (number + 1) * 10, b"state %d" % number)
    return path


def test_a_new_state_file_records_its_run(tmp_path: Path) -> None:
    with make(tmp_path / "run.db", info={"ships": 12, "note": "é"}, keep=5) as state:
        meta = state.meta
    with StateFile.open(tmp_path / "run.db") as state:
        assert state.meta == meta
    assert (meta.scenario, meta.seed, meta.code, meta.keep) == ("docking", 7, "abc123", 5)
    assert meta.info == {"ships": 12, "note": "é"}
    assert meta.spaceactors_version == sa.__version__
    db = sqlite3.connect(tmp_path / "run.db")
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == FORMAT_VERSION
    db.close()


@pytest.mark.parametrize("seed", [-(2**63), 0, 2**64 - 1])
def test_every_seed_a_system_takes_survives_the_file(tmp_path: Path, seed: int) -> None:
    make(tmp_path / "run.db", seed=seed).close()
    with StateFile.open(tmp_path / "run.db") as state:
        assert state.meta.seed == seed


@pytest.mark.parametrize("keep", [1, 2, 5])
def test_only_the_last_keep_checkpoints_are_kept(tmp_path: Path, keep: int) -> None:
    with make(tmp_path / "run.db", keep=keep) as state:
        assert state.latest() is None
        numbers = [state.write_checkpoint(float(n), n, b"p%d" % n) for n in range(7)]
        assert numbers == list(range(1, 8))
    with StateFile.open(tmp_path / "run.db") as state:
        kept = state.checkpoints()
        latest = state.latest()
    assert [c.number for c in kept] == list(range(8 - keep, 8))
    assert [c.payload for c in kept] == [b"p%d" % n for n in range(7 - keep, 7)]
    assert latest == kept[-1]
    assert (latest.sim_time, latest.trace_count) == (6.0, 6)


def test_a_reopened_file_continues_numbering_and_keeping(run_db: Path) -> None:
    with StateFile.open(run_db, writable=True) as state:
        assert state.write_checkpoint(240.0, 40, b"more") == 4
        assert [c.number for c in state.checkpoints()] == [2, 3, 4]


def test_a_checkpoint_never_goes_back_in_time_or_trace(run_db: Path) -> None:
    with StateFile.open(run_db, writable=True) as state:
        assert "go back from checkpoint 3" in refusal(lambda: state.write_checkpoint(10.0, 30, b""))
        refusal(lambda: state.write_checkpoint(180.0, 29, b""))
        assert state.write_checkpoint(180.0, 30, b"same moment") == 4


@pytest.mark.parametrize(
    ("sim_time", "trace_count", "payload"),
    [
        (math.nan, 0, b""), (math.inf, 0, b""), (-1.0, 0, b""), (True, 0, b""),
        (1.0, -1, b""), (1.0, 2**63, b""), (1.0, 1.5, b""), (1.0, None, b""),
        (1.0, 0, "text"), (1.0, 0, None), (1.0, 0, [1]), (10**400, 0, b""),
    ],
)  # fmt: skip
def test_bad_checkpoint_arguments_are_refused(
    tmp_path: Path, sim_time: object, trace_count: object, payload: object
) -> None:
    with make(tmp_path / "run.db") as state:
        refusal(lambda: state.write_checkpoint(sim_time, trace_count, payload))  # type: ignore[arg-type]
        assert state.latest() is None


@pytest.mark.parametrize(
    "bad",
    [
        {"scenario": ""}, {"scenario": 3}, {"scenario": "\ud800"}, {"seed": 2**64},
        {"seed": -(2**63) - 1}, {"seed": True}, {"seed": 1.0}, {"code": None}, {"keep": 0},
        {"keep": 10**400}, {"info": [1]}, {"info": {1: 2}}, {"info": {"x": math.nan}},
        {"info": {"x": object()}}, {"info": {"x": (1, 2)}}, {"info": "x"},
    ],
)  # fmt: skip
def test_bad_run_arguments_are_refused_and_leave_no_file(
    tmp_path: Path, bad: dict[str, object]
) -> None:
    refusal(lambda: make(tmp_path / "run.db", **bad))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", [3, None, b"run.db", [1]])
def test_a_path_must_be_a_path(path: object) -> None:
    assert "path" in refusal(lambda: StateFile.open(path))  # type: ignore[arg-type]


def test_create_never_replaces_another_run_unless_told(run_db: Path) -> None:
    text = refusal(lambda: make(run_db, scenario="large-fleet"))
    assert text.startswith(f"{run_db}: already holds a run")
    assert "overwrite" in text
    assert "resume" in text
    with StateFile.open(run_db) as state:
        assert state.latest() is not None
    with make(run_db, scenario="large-fleet", overwrite=True) as state:
        assert state.latest() is None
        assert state.meta.scenario == "large-fleet"
    assert [p.name for p in run_db.parent.iterdir()] == ["run.db"]


@pytest.mark.parametrize("content", [b"my thesis", b"SQLite format 3\x00" + bytes(200)])
def test_create_never_replaces_a_file_that_is_not_a_state_file(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(content)
    for overwrite in (False, True):
        text = refusal(lambda: make(path, overwrite=overwrite))  # noqa: B023
        assert "not a spaceactors state file" in text
        assert "never overwritten" in text
    assert path.read_bytes() == content


def test_create_may_replace_an_empty_file_when_told(tmp_path: Path) -> None:
    (tmp_path / "run.db").touch()
    refusal(lambda: make(tmp_path / "run.db"))
    make(tmp_path / "run.db", overwrite=True).close()


def test_create_refuses_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    assert "cannot be created" in refusal(lambda: make(tmp_path / "no" / "run.db"))


def test_the_file_is_made_with_the_umask_like_any_other(tmp_path: Path) -> None:
    make(tmp_path / "run.db").close()
    (tmp_path / "plain").touch()
    assert (tmp_path / "run.db").stat().st_mode == (tmp_path / "plain").stat().st_mode


@pytest.mark.parametrize("name", ["run ?#%.db", "ünïcode.db", "a;b'c.db"])
def test_any_file_name_works(tmp_path: Path, name: str) -> None:
    with make(tmp_path / name) as state:
        state.write_checkpoint(1.0, 0, b"x")
    with StateFile.open(str(tmp_path / name)) as state:
        assert state.latest() is not None


def test_a_read_only_or_closed_file_refuses_writes(run_db: Path) -> None:
    state = StateFile.open(run_db)
    assert "read-only" in refusal(lambda: state.write_checkpoint(999.0, 99, b""))
    assert "read-only" in refusal(lambda: state.append_trace_segment(30, 1, "msgpack", b""))
    assert "read-only" in refusal(lambda: state.drop_trace_before(30))
    assert "read-only" in refusal(lambda: state.drop_trace_from(30))
    state.close()
    state.close()
    assert refusal(state.latest) == f"{run_db} is closed: open it again (StateFile.open)"
    assert "closed" in refusal(lambda: list(state.trace_segments()))


def test_trace_segments_are_read_from_any_event(run_db: Path) -> None:
    with StateFile.open(run_db) as state:
        assert [s.first for s in state.trace_segments()] == [0, 10, 20]
        assert [s.first for s in state.trace_segments(9)] == [0, 10, 20]
        assert [s.first for s in state.trace_segments(10)] == [10, 20]
        assert [s.first for s in state.trace_segments(29)] == [20]
        assert list(state.trace_segments(30)) == []
        assert next(state.trace_segments(15)) == TraceSegment(10, 10, "msgpack", bytes([1]) * 50)


def test_dropped_trace_segments_are_skipped(run_db: Path) -> None:
    with StateFile.open(run_db, writable=True) as state:
        assert state.drop_trace_before(19) == 1  # the segment holding event 19 is kept whole
        assert [s.first for s in state.trace_segments()] == [10, 20]
        assert state.drop_trace_before(1000) == 2
        assert list(state.trace_segments()) == []
        state.append_trace_segment(500, 3, "json", b"[]")  # nothing stored: any start
        assert [s.first for s in state.trace_segments()] == [500]


@pytest.mark.parametrize(("first", "count"), [(29, 5), (31, 5), (0, 5), (30, 0), (-1, 5)])
def test_a_trace_segment_must_follow_the_stored_trace(
    run_db: Path, first: int, count: int
) -> None:
    with StateFile.open(run_db, writable=True) as state:
        refusal(lambda: state.append_trace_segment(first, count, "msgpack", b""))
        state.append_trace_segment(30, 5, "msgpack", b"")
        assert [s.first for s in state.trace_segments(25)] == [20, 30]


def test_a_checkpoint_and_the_trace_before_it_are_written_together(run_db: Path) -> None:
    with StateFile.open(run_db, writable=True) as state:
        segment = TraceSegment(30, 7, "msgpack", b"events")
        assert state.write_checkpoint(240.0, 37, b"state", segment=segment) == 4
        assert list(state.trace_segments(36)) == [segment]
        for bad in [
            TraceSegment(38, 2, "msgpack", b""),  # a gap after the stored trace
            TraceSegment(37, 2, "msgpack", b""),  # ends before the checkpoint's trace_count
            TraceSegment(37, 3, "", b""),  # no codec
            (37, 3),
        ]:
            refusal(lambda: state.write_checkpoint(300.0, 40, b"", segment=bad))  # type: ignore[arg-type]  # noqa: B023
        assert [c.number for c in state.checkpoints()] == [2, 3, 4]  # nothing else was written
        assert [s.first for s in state.trace_segments()] == [0, 10, 20, 30]


def test_the_trace_past_a_checkpoint_can_be_dropped_from_a_segment_start(run_db: Path) -> None:
    with StateFile.open(run_db, writable=True) as state:
        state.append_trace_segment(30, 5, "msgpack", b"after the last checkpoint")
        text = refusal(lambda: state.drop_trace_from(33))
        assert "event 33 is inside the trace segment from event 30" in text
        assert state.drop_trace_from(30) == 1
        assert state.drop_trace_from(30) == 0
        assert [s.first for s in state.trace_segments()] == [0, 10, 20]
        state.append_trace_segment(30, 2, "msgpack", b"again")


def test_a_gap_in_the_trace_is_refused(run_db: Path) -> None:
    db = sqlite3.connect(run_db)
    db.execute("DELETE FROM trace_segments WHERE first = 10")
    db.commit()
    db.close()
    with StateFile.open(run_db) as state:
        assert [s.first for s in state.trace_segments(15)] == [20]  # from the first one kept
        text = refusal(lambda: list(state.trace_segments()))
    assert text == (
        f"{run_db}: damaged (events 10 to 19 of the trace are missing): the file changed after"
        " it was written: use a backup copy or start a new run"
    )


def test_a_run_is_matched_by_scenario_and_code(
    run_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StateFile.open(run_db) as state:
        state.check_matches(scenario="docking", code="abc123")
        assert refusal(lambda: state.check_matches(scenario="large-fleet", code="abc123")) == (
            f"{run_db} was written by scenario 'docking', not 'large-fleet': resume it with "
            "'docking', or give the state file of 'large-fleet'"
        )
        text = refusal(lambda: state.check_matches(scenario="docking", code="def456"))
        written = f"{run_db} was written by spaceactors {sa.__version__} / code abc123"
        assert text.startswith(written)
        assert f"this is spaceactors {sa.__version__} / code def456" in text
        monkeypatch.setattr(sa, "__version__", "9.9.9")
        text = refusal(lambda: state.check_matches(scenario="docking", code="abc123"))
        assert "this is spaceactors 9.9.9 / code abc123" in text


def test_writes_from_another_thread_are_serialised(tmp_path: Path) -> None:
    with make(tmp_path / "run.db", keep=100) as state:
        def write(offset: int) -> None:
            for n in range(20):
                state.write_checkpoint(1.0, 0, b"%d" % (offset + n))

        threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(state.checkpoints()) == 60


# A writer killed with SIGKILL at random moments, mostly in the middle of a checkpoint write.
WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from spaceactors.checkpoint import StateFile, TraceSegment

    def payload(number, size):
        return hashlib.sha256(b"%d" % number).digest() * (size // 32)

    with StateFile.open(sys.argv[1], writable=True) as state:
        latest = state.latest()
        number = latest.number if latest else 0
        while True:
            number += 1
            print("writing", number, flush=True)
            data = payload(number, int(sys.argv[2]))
            segment = TraceSegment(number - 1, 1, "msgpack", data[:1000])
            assert state.write_checkpoint(float(number), number, data, segment=segment) == number
            print("wrote", number, flush=True)
    """
)


def payload(number: int, size: int) -> bytes:
    return hashlib.sha256(b"%d" % number).digest() * (size // 32)


def progress(line: str, started: int, wrote: int) -> tuple[int, int]:
    """The last checkpoint the writer began, and the last it finished, after `line`."""
    word, number = line.split()
    return (int(number), wrote) if word == "writing" else (started, int(number))


def test_a_writer_killed_mid_write_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    size = 2**22  # 4 MiB, so most of the writer's time is spent writing
    path = tmp_path / "run.db"
    with make(path, keep=2) as state:
        for number in (1, 2):
            segment = TraceSegment(number - 1, 1, "msgpack", payload(number, size)[:1000])
            state.write_checkpoint(float(number), number, payload(number, size), segment=segment)
    rng = random.Random(15)
    interrupted = 0
    for trial in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(size)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        started = wrote = 0
        wanted = rng.randint(1, 2)  # kill in the first or the second write
        try:
            while started < wanted:
                started, wrote = progress(writer.stdout.readline(), started, wrote)
            if trial % 2:  # at a random moment
                threading.Event().wait(rng.uniform(0.0, 0.1))
            else:  # as soon as the write has begun changing the file
                for _ in range(10_000):
                    if os.path.exists(f"{path}-journal"):
                        break
                    threading.Event().wait(0.001)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
        for line in writer.stdout:
            started, wrote = progress(line, started, wrote)
        writer.stdout.close()
        interrupted += os.path.exists(f"{path}-journal")
        with StateFile.open(path, writable=trial % 2 == 0) as state:  # rolls back the write
            latest = state.latest()
            assert latest is not None
            assert wrote <= latest.number <= started
            assert latest.payload == payload(latest.number, size)
            assert latest.trace_count == latest.number
            *_, last = state.trace_segments(latest.trace_count - 1)  # the checkpoint's trace
            assert last.first + last.count == latest.trace_count  # and nothing after it
            assert last.data == payload(latest.number, size)[:1000]
            assert len(state.checkpoints()) == 2
    with StateFile.open(path, writable=True) as state:
        state.write_checkpoint(1e6, 10**6, b"after")
    assert not os.path.exists(f"{path}-journal")
    assert interrupted >= 1, "no kill landed in the middle of a write"


def read_all(path: Path) -> None:
    """What a resume reads: the file, its latest checkpoint, its whole trace."""
    with StateFile.open(path) as state:
        state.latest()
        state.checkpoints()
        list(state.trace_segments())


def sql(*statements: str) -> Callable[[Path], None]:
    def tamper(path: Path) -> None:
        db = sqlite3.connect(path)
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()

    return tamper


def cut(size: int) -> Callable[[Path], None]:
    def tamper(path: Path) -> None:
        path.write_bytes(path.read_bytes()[:size])

    return tamper


def replace(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def flip_byte(offset: int, value: int) -> Callable[[Path], None]:
    def tamper(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[offset] = value
        path.write_bytes(bytes(data))

    return tamper


def foreign(path: Path) -> None:
    path.unlink()
    sql("CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('hello')")(path)


DAMAGED = "the file changed after it was written: use a backup copy or start a new run"
BAD_FILES = {
    "missing": (Path.unlink, "no such file"),
    "a directory": (lambda p: (p.unlink(), p.mkdir()), "is a directory, not a state file"),
    "empty": (replace(b""), "is empty, not a state file"),
    "a cut header": (cut(60), "truncated (60 bytes, not even a header)"),
    "cut in half": (cut(8192), "truncated (8192 bytes of "),
    "not SQLite": (replace(b"ship,x\n1,2\n"), "not a spaceactors state file (not a SQLite"),
    "SQLite of something else": (
        foreign,
        "not a spaceactors state file (it is a SQLite database of something else)",
    ),
    "another application_id": (
        sql("PRAGMA application_id=1"),
        "(it is a SQLite database of another application)",
    ),
    "a newer format": (sql("PRAGMA user_version=2"), "format version 2 is newer than this"),
    "an older format": (sql("PRAGMA user_version=0"), "format version 0 is older than this"),
    "a table missing": (sql("DROP TABLE trace_segments"), "its table trace_segments is missing"),
    "a column missing": (
        sql("ALTER TABLE checkpoints DROP COLUMN taken_at"),
        "table checkpoints has no column taken_at",
    ),
    "a trigger": (
        sql("CREATE TRIGGER t AFTER INSERT ON checkpoints BEGIN DELETE FROM meta; END"),
        "damaged (it holds a trigger 't')",
    ),
    "a view for a table": (
        sql("DROP TABLE checkpoints", "CREATE VIEW checkpoints AS SELECT * FROM meta"),
        "damaged (it holds a view 'checkpoints')",
    ),
    "two meta rows": (sql("INSERT INTO meta SELECT * FROM meta"), "meta table has 2 rows, not 1"),
    "a tampered run": (
        sql("UPDATE meta SET scenario = 'large-fleet'"),
        f"damaged (its meta row's checksum does not match): {DAMAGED}",
    ),
    "a tampered payload": (
        sql("UPDATE checkpoints SET payload = x'00' WHERE number = 3"),
        f"checkpoint 3 is damaged (its checksum does not match): {DAMAGED}",
    ),
    "a tampered sim_time": (
        sql("UPDATE checkpoints SET sim_time = 1.5 WHERE number = 3"),
        "checkpoint 3 is damaged (its checksum does not match)",
    ),
    "a NULL payload": (
        sql("UPDATE checkpoints SET payload = NULL WHERE number = 2"),
        f"checkpoint 2 is damaged (its payload is NULL, not a blob): {DAMAGED}",
    ),
    "a sim_time that is text": (
        sql("UPDATE checkpoints SET sim_time = 'soon'"),
        "checkpoint 3 is damaged (its sim_time is text, not a real)",
    ),
    "a seed that is a blob": (
        sql("UPDATE meta SET seed = x'07'"),
        "its meta row is damaged (its seed is a blob, not text)",
    ),
    "a tampered trace segment": (
        sql("UPDATE trace_segments SET codec = 'pickle' WHERE first = 10"),
        "the trace segment from event 10 is damaged (its checksum does not match)",
    ),
    "a WAL header": (flip_byte(18, 2), "damaged (its header asks for WAL mode)"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
def test_a_bad_file_is_refused_with_one_line_naming_it(run_db: Path, case: str) -> None:
    tamper, words = BAD_FILES[case]
    tamper(run_db)
    text = refusal(lambda: read_all(run_db))
    assert text.startswith(f"{run_db}: ")
    assert words in text


HOSTILE = [10**400, -1, math.nan, math.inf, True, None, "x", "\ud800", "a" * 100_000, [1], b"x",
           1j, object(), {"k": object()}]  # fmt: skip
CALLS: dict[str, Callable[[StateFile, Path, object], object]] = {
    "create path": lambda s, p, v: make(v),  # type: ignore[arg-type]
    "create overwrite": lambda s, p, v: make(p.with_name("new.db"), overwrite=v),
    "open path": lambda s, p, v: StateFile.open(v),  # type: ignore[arg-type]
    "open writable": lambda s, p, v: StateFile.open(p, writable=v),  # type: ignore[arg-type]
    "sim_time": lambda s, p, v: s.write_checkpoint(v, 40, b""),  # type: ignore[arg-type]
    "trace_count": lambda s, p, v: s.write_checkpoint(999.0, v, b""),  # type: ignore[arg-type]
    "payload": lambda s, p, v: s.write_checkpoint(999.0, 40, v),  # type: ignore[arg-type]
    "first": lambda s, p, v: s.append_trace_segment(v, 1, "c", b""),  # type: ignore[arg-type]
    "count": lambda s, p, v: s.append_trace_segment(30, v, "c", b""),  # type: ignore[arg-type]
    "codec": lambda s, p, v: s.append_trace_segment(30, 1, v, b""),  # type: ignore[arg-type]
    "data": lambda s, p, v: s.append_trace_segment(30, 1, "c", v),  # type: ignore[arg-type]
    "start": lambda s, p, v: list(s.trace_segments(v)),  # type: ignore[arg-type]
    "event_index": lambda s, p, v: s.drop_trace_before(v),  # type: ignore[arg-type]
    "drop from": lambda s, p, v: s.drop_trace_from(v),  # type: ignore[arg-type]
    "segment": lambda s, p, v: s.write_checkpoint(999.0, 40, b"", segment=v),  # type: ignore[arg-type]
    "scenario": lambda s, p, v: s.check_matches(scenario=v, code="abc123"),  # type: ignore[arg-type]
    "code": lambda s, p, v: s.check_matches(scenario="docking", code=v),  # type: ignore[arg-type]
}


ACCEPTS = {"create path": str, "open path": str, "create overwrite": bool, "open writable": bool,
           "sim_time": float, "payload": bytes, "data": bytes, "codec": str, "scenario": str,
           "code": str, "segment": type(None)}  # fmt: skip


@pytest.mark.parametrize("argument", CALLS)
def test_every_argument_refuses_hostile_values_with_the_one_error(
    run_db: Path, argument: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(run_db.parent)  # a path given as "x" creates ./x: in the test's folder
    with StateFile.open(run_db, writable=True) as state:
        for value in HOSTILE:
            try:
                result = CALLS[argument](state, run_db, value)
            except sa.StateFileError as error:
                refused: sa.StateFileError | None = error
            else:
                refused = None
                if isinstance(result, StateFile):
                    result.close()
            if refused is None:  # accepted: only a value of the right type may be
                assert type(value) is ACCEPTS.get(argument, int), (argument, value)
            else:
                assert len(str(refused)) < 300 + len(str(run_db)), str(refused)


def test_a_run_that_stopped_before_its_first_checkpoint_is_started_again_not_resumed(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty.db"
    make(empty).close()
    text = refusal(lambda: make(empty, scenario="large-fleet"))
    assert text == (
        f"{empty}: already holds a run that stopped before its first checkpoint: start it "
        "again over it (overwrite=True, --overwrite), or choose another path"
    )
