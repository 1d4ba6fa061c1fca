"""What a tester found in the observation server and around it, each kind pinned:

- times on /status and /events are sim seconds, whatever the run's clock read when the system
  opened (a crash's time once read 107,513 s beside a sim time of 46 s);
- `--summary-json` never replaces a device, a pipe or a link by its file;
- a cross-site page cannot steer a run: /control refuses a request whose Origin is another
  site, and the server answers only to its own host names (DNS rebinding);
- the bearer scheme is case-insensitive (RFC 7235).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.cli.command import main
from tests.observe_client import get_json, read_events


class Fragile(sa.Actor):
    async def handle(self, message: object) -> object:
        if message == "boom":
            raise ValueError("fuel < 0")
        return message


@pytest.mark.parametrize("opened_at", [0.0, 107_466.5])
async def test_crash_and_event_times_are_sim_seconds(
    virtual_clock: trio.testing.MockClock, opened_at: float
) -> None:
    virtual_clock.jump(opened_at - trio.current_time())
    got: list[list[tuple[str | None, Any]]] = []
    async with sa.open_system(observe="127.0.0.1:0") as system:
        url = system.observe_url
        assert url is not None
        ship = await system.spawn(Fragile, name="ship")
        connected = trio.Event()

        async def reader() -> None:
            def opened() -> None:
                trio.from_thread.run_sync(connected.set)

            got.append(await trio.to_thread.run_sync(read_events, url + "/events", 2, opened))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await connected.wait()
            await trio.sleep(5 - (trio.current_time() - opened_at))
            await ship.send("boom")
            await ship.ask("ping")
        status = await get_json(url + "/status?sort=restarts&limit=1")
    (events,) = got
    (actor,) = status["actors"]
    assert status["sim_time"] == pytest.approx(5.0)
    assert actor["last_crash"]["time"] == pytest.approx(5.0)
    (restart,) = [data for kind, data in events if kind == "restart"]
    assert restart["time"] == pytest.approx(5.0)


@pytest.mark.parametrize("kind", ["device", "fifo", "symlink"])
def test_summary_json_never_replaces_what_is_not_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    target = tmp_path / "summary.json"
    if kind == "device":
        target = Path(os.devnull)
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        (tmp_path / "real.json").write_text("keep me", encoding="utf-8")
        target.symlink_to(tmp_path / "real.json")
    before = os.lstat(target)
    code = main(["run", "trade-route", "--duration", "5", "--summary-json", str(target)])
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "not a regular file" in err
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    if kind == "symlink":
        assert (tmp_path / "real.json").read_text(encoding="utf-8") == "keep me"


def post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def test_another_site_cannot_steer_a_run(virtual_clock: trio.testing.MockClock) -> None:
    async with sa.open_system(observe="127.0.0.1:0") as system:
        url = system.observe_url
        assert url is not None
        host = url.removeprefix("http://")
        evil = {"Origin": "http://evil.example"}
        assert await trio.to_thread.run_sync(post, url + "/control/pause", evil) == 403
        rebound = {"Host": f"evil.example:{host.rsplit(':', 1)[1]}"}
        assert await trio.to_thread.run_sync(post, url + "/control/pause", rebound) == 400
        own = {"Origin": url}
        assert await trio.to_thread.run_sync(post, url + "/control/pause", own) == 200
        assert await trio.to_thread.run_sync(post, url + "/control/resume", {}) == 200
        assert await trio.to_thread.run_sync(post, url + "/control/resume", {"Host": host}) == 200


async def test_the_bearer_scheme_is_case_insensitive(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe="127.0.0.1:0", observe_token="s3cret") as system:
        url = system.observe_url
        assert url is not None
        for scheme in ("Bearer", "bearer", "BEARER"):
            headers = {"Authorization": f"{scheme} s3cret"}
            assert await trio.to_thread.run_sync(post, url + "/control/resume", headers) == 200
        wrong = {"Authorization": "Basic s3cret"}
        assert await trio.to_thread.run_sync(post, url + "/control/resume", wrong) == 401


def raw_server(answer: bytes, *, trickle: bool = False) -> tuple[int, threading.Event]:
    """A server on 127.0.0.1 that answers every connection with `answer` (a byte every
    0.2 s when `trickle`), until the event is set."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        with listener:
            while not done.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                with connection:
                    connection.recv(65536)
                    if not trickle:
                        connection.sendall(answer)
                        continue
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    while not done.wait(0.2):
                        try:
                            connection.sendall(b" ")
                        except OSError:
                            break

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], done


def top(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["top", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_top_gives_up_on_a_server_that_trickles_within_its_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, done = raw_server(b"", trickle=True)
    try:
        started = time.monotonic()
        code, out, err = top(capsys, f"127.0.0.1:{port}", "--once", "--timeout", "1")
        assert time.monotonic() - started < 10  # not "until killed": bounded by --timeout
    finally:
        done.set()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "did not answer within 1 s" in err


@pytest.mark.parametrize(
    "answer",
    [
        b"\x1b[31mred\x00\r\n\r\n",  # not HTTP, with a terminal escape and a NUL
        b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n\x1b[2J{"a":\r\n1}',
        b"HTTP/1.1 302 Found\r\nLocation: /status\r\nContent-Length: 0\r\n\r\n",  # a loop
    ],
)
def test_top_errors_are_one_line_of_text_whatever_the_server_sends(
    capsys: pytest.CaptureFixture[str], answer: bytes
) -> None:
    port, done = raw_server(answer)
    try:
        code, out, err = top(capsys, f"127.0.0.1:{port}", "--once", "--timeout", "5")
    finally:
        done.set()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert not any(ch in err for ch in "\x1b\x00\r")


@pytest.mark.parametrize("url", ["http://[::1", "http://[nope]:80", "http://host:99999"])
def test_top_refuses_a_malformed_url_in_one_line(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, err = top(capsys, url, "--once")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "is not the URL of an observation server" in err


def test_a_wall_clock_faster_than_the_machine_makes_every_tick_late_not_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At --speed 1,000,000 the build alone takes hours of sim time and every tick is late:
    the world still makes every tick of the run (it once made none: 0 ship updates)."""
    code = main(["run", "trade-route", "--clock", "wall", "--speed", "1000000", "--duration", "60"])
    out, _ = capsys.readouterr()
    assert code in (0, 1)  # asks time out in microseconds of real time: expectations may fail
    fleet = next(line for line in out.splitlines() if line.strip().startswith("fleet"))
    assert "12 ships, 3 stations, 720 ship updates" in fleet  # 60 ticks x 12 ships
