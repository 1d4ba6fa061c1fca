"""`spaceactors top URL`: a real HTTP server answers /status with documents built from a real
system's actor statuses; `top` shows the actors first by restarts, mailbox depth or message
rate, says in one line (exit 2) when the URL is not a spaceactors server, and escapes names."""

from __future__ import annotations

import argparse
import functools
import io
import socket
from typing import Any

import pytest
import trio
from rich.console import Console
from status_server import observed_run, serving

from spaceactors.cli import main
from spaceactors.cli.command import _parser
from spaceactors.cli.top import View, fetch, top_actors, watch

PLAN = {
    "steady": (9, 0, 0),
    "flaky": (3, 1, 0),
    "crashy": (0, 3, 0),
    "busy": (20, 0, 0),
    "stuck": (1, 0, 12),
    "idle": (0, 0, 0),
    "queued": (2, 0, 5),
}


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return observed_run(PLAN, readings=3)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def rows(text: str) -> list[list[str]]:
    """The table's rows: its cells, stripped."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if "│ user/" in line
    ]


def expected_order(docs: list[dict[str, Any]], sort: str) -> list[tuple[str, float]]:
    """(path, value) of every actor, most first then by path, as the documents say."""
    last = docs[-1]["actors"]
    if sort == "rate":
        before = {a["path"]: a["handled"] for a in docs[-2]["actors"]}
        seconds = docs[-1]["wall_time"] - docs[-2]["wall_time"]
        values = {a["path"]: (a["handled"] - before[a["path"]]) / seconds for a in last}
    else:
        field = {"restarts": "restarts", "mailbox": "mailbox_depth"}[sort]
        values = {a["path"]: a[field] for a in last}
    return sorted(values.items(), key=lambda item: (-item[1], item[0]))


@pytest.mark.parametrize("sort", ["restarts", "mailbox", "rate"])
@pytest.mark.parametrize("shown", [1, 3, 7])
def test_once_lists_the_top_actors_by_the_chosen_order(
    documents: list[dict[str, Any]], sort: str, shown: int
) -> None:
    docs = documents[-2:] if sort == "rate" else documents[-1:]
    with serving(docs) as server:
        code, out, err = run(
            "top", server.url, "--once", "--sort", sort, "--rows", str(shown), "--interval", "0.01"
        )
    assert (code, err) == (0, "")
    table = rows(out)
    everyone = dict(expected_order(docs, sort))
    want = expected_order(docs, sort)[:shown]
    # The top values, most first; actors tied at the cut may be any of the tied ones (the
    # server's limit picks them), shown by path.
    assert [everyone[row[0]] for row in table] == [value for _, value in want]
    assert [row[0] for row in table] == sorted(
        (row[0] for row in table), key=lambda p: (-everyone[p], p)
    )
    assert any(value > 0 for _, value in want), "the plan gave this order nothing to sort"
    by_path = {a["path"]: a for a in docs[-1]["actors"]}
    for row, (_, value) in zip(table, want, strict=True):
        actor = by_path[row[0]]
        assert row[4] == f"{actor['handled']:,}"
        assert row[6] == f"{actor['restarts']:,}"
        assert row[3] == f"{actor['mailbox_depth']}/{actor['mailbox_capacity']}"
        if sort == "rate":
            assert row[5] == f"{value:,.1f}"
    totals = docs[-1]["totals"]
    assert f"restarts {totals['restarts']:,}" in out
    assert f"handled {totals['messages_handled']:,}" in out
    assert f"t={docs[-1]['sim_time']:,.1f} s" in out


def test_the_restarts_and_last_crash_are_the_actors_own(documents: list[dict[str, Any]]) -> None:
    with serving(documents[-1:]) as server:
        code, out, _ = run("top", server.url, "--once", "--rows", "2")
    assert code == 0
    first = rows(out)[0]
    crashy = next(a for a in documents[-1]["actors"] if a["path"] == "user/crashy")
    assert first[0] == "user/crashy"
    assert crashy["restarts"] == 9  # three crashes a second, for three seconds
    assert first[6] == "9"
    assert "fuel < 0" in first[7]
    assert f"t={crashy['last_crash']['time']:,.1f} s" in first[7]


def test_a_url_without_scheme_or_with_status_reads_the_same_server(
    documents: list[dict[str, Any]],
) -> None:
    with serving(documents[-1:]) as server:
        bare = run("top", server.url.removeprefix("http://"), "--once")
        full = run("top", server.url + "/status", "--once")
        assert all(path.startswith("/status?") for path in server.requests)
    assert bare[0] == full[0] == 0
    assert rows(bare[1]) == rows(full[1])


def test_names_are_shown_as_text_never_as_markup_or_escapes() -> None:
    hostile = {"markup": "[bold red]ship[/bold red]", "escape": "ship\x1b[2J:7"}
    docs = observed_run({"markup": (0, 2, 0), "escape": (0, 1, 0)}, readings=1, names=hostile)
    with serving(docs) as server:
        code, out, _ = run("top", server.url, "--once")
    assert code == 0
    assert "user/[bold red]ship[/bold red]" in out
    assert "\x1b" not in out
    assert "user/ship\\x1b[2J:7" in out


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_url_is_one_line_and_exit_2() -> None:
    code, out, err = run("top", f"http://127.0.0.1:{closed_port()}", "--once")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("spaceactors: error: cannot reach http://127.0.0.1:")


@pytest.mark.parametrize(
    ("documents", "content", "path", "says"),
    [
        ([], b"<html><body>hello</body></html>", "", "its answer is not JSON"),
        ([{"hello": "world"}], None, "", "not a status document (version 1)"),
        ([{"version": 1, "actors": []}], None, "", "no actors or totals"),
        ([{"version": 2, "actors": [], "totals": {}}], None, "", "version 1"),
        ([{}], None, "/elsewhere", "answered 404"),
    ],
)
def test_a_url_that_is_not_a_spaceactors_server_is_one_line_and_exit_2(
    documents: list[Any], content: bytes | None, path: str, says: str
) -> None:
    with serving(documents, content=content) as server:
        code, out, err = run("top", server.url + path, "--once")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("spaceactors: error: ")
    assert says in err


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "http://", "mailto:x@y"])
def test_a_url_that_is_not_http_is_one_line_and_exit_2(url: str) -> None:
    code, _, err = run("top", url, "--once")
    assert code == 2
    assert err.count("\n") == 1
    assert "is not the URL of an observation server" in err


class Enough(Exception):
    """Ends the live view after the readings the test wanted."""


def watch_every_document(
    args: argparse.Namespace, console: Console, documents: list[dict[str, Any]]
) -> None:
    """Run `watch` against a real server of `documents`, one real HTTP read each, until
    every document was read."""
    bodies: list[bytes] = []

    def read(url: str, timeout: float) -> bytes:
        if len(bodies) == len(documents):
            raise Enough
        bodies.append(fetch(url, timeout))
        return bodies[-1]

    with serving(documents) as server:
        args.url = server.url
        with pytest.raises(Enough):
            trio.run(functools.partial(watch, args, console, read=read))


def test_the_live_view_redraws_each_reading_until_stopped(
    documents: list[dict[str, Any]],
) -> None:
    args = _parser().parse_args(["top", "URL", "--sort", "rate", "--interval", "0.01"])
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    watch_every_document(args, console, documents)
    frames = screen.getvalue()
    drawn = [f"t={doc['sim_time']:,.1f} s" for doc in documents]
    assert all(clock in frames for clock in drawn)  # a frame for each reading, in order
    assert [frames.index(clock) for clock in drawn] == sorted(frames.index(c) for c in drawn)
    last_frame = frames[frames.rindex("spaceactors top") :]
    want = expected_order(documents, "rate")
    shown = rows(last_frame)
    assert [row[0] for row in shown] == [path for path, _ in want]
    assert [row[5] for row in shown] == [f"{value:,.1f}" for _, value in want]
    first_frame = frames[: frames.index("spaceactors top", 1)]
    assert all(row[5] == "-" for row in rows(first_frame))  # no rate from one reading


def test_off_a_terminal_each_reading_is_printed_in_turn(
    documents: list[dict[str, Any]],
) -> None:
    """To a pipe or a file, `top` prints one table per reading (rich's Live would print only
    the last, when it stops)."""
    args = _parser().parse_args(["top", "URL", "--interval", "0.01"])
    screen = io.StringIO()
    console = Console(file=screen, width=160, color_system=None)
    assert not console.is_terminal
    watch_every_document(args, console, documents)
    printed = screen.getvalue()
    assert printed.count("spaceactors top") == len(documents)
    assert "\r" not in printed
    assert "\x1b" not in printed


def test_by_mailbox_only_actors_with_a_mailbox_are_ranked() -> None:
    actors = [
        {"path": "services", "mailbox_depth": 0, "mailbox_capacity": 0},
        {"path": "user/ship:1", "mailbox_depth": 0, "mailbox_capacity": 64},
        {"path": "user/ship:2", "mailbox_depth": 3, "mailbox_capacity": 64},
    ]
    view = View({"actors": actors}, {}, None, None)
    assert [a["path"] for a in top_actors(view, "mailbox", 5)] == ["user/ship:2", "user/ship:1"]
    assert len(top_actors(view, "restarts", 5)) == 3  # the other orders keep every row
