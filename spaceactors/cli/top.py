"""``spaceactors top URL``: a terminal view of a running system's observation server.

It reads ``GET /status`` (the JSON document of `spaceactors.observe`: the clock, the totals and
every actor's state, mailbox, messages handled and restarts) once a second and shows the clock,
the totals and the top actors by restarts, mailbox depth or message rate, redrawn in place
with rich's `Live` (refreshed by this loop: no thread of its own). The message rate of an
actor is the change of its ``handled`` count between two readings, per wall second. ``--once``
prints one table and exits 0. A URL that does not answer, or answers with something that is
not a spaceactors status document, ends the command with one line and exit code 2.

The HTTP request itself is a blocking `urllib` call in a worker thread (`trio.to_thread`),
bounded by ``--timeout``; proxies from the environment are not used (the server is usually
on this machine).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import attrs
import trio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

import spaceactors as sa
from spaceactors.cli.arguments import SECONDS, number
from spaceactors.cli.run import BadInput
from spaceactors.cli.signals import Signals

SORTS = {"restarts": "restarts", "mailbox": "mailbox_depth", "rate": "rate"}
"""``--sort`` choices, and the field of an actor they order by (most first)."""
MAX_DOCUMENT_BYTES = 64 * 2**20
"""A /status answer larger than this is refused (it is read whole)."""
ALL_ACTORS = 1_000_000
"""The ``limit`` asked for when every actor is needed (``--sort rate``)."""
ROWS = number(int, "a whole number", lambda v: 1 <= v <= 10_000, "a whole number from 1 to 10,000")


class TopError(Exception):
    """The server cannot be read, or is not a spaceactors observation server (exit code 2).
    Its message is one line: line breaks and control characters (from the server's answer or
    the URL) are shown as text, never sent to the terminal."""

    def __init__(self, message: str) -> None:
        super().__init__(_plain(" ".join(message.split())))


def add_top_command(commands: Any) -> None:
    """Add ``top`` to the command's subparsers."""
    top = commands.add_parser(
        "top", help="watch a running system's observation server (its /status) in the terminal"
    )
    top.add_argument(
        "url", help="the observation server: http://HOST:PORT (what --observe printed)"
    )
    top.add_argument(
        "--sort",
        choices=tuple(SORTS),
        default="restarts",
        help="order actors by restarts (default), mailbox depth or message rate",
    )
    top.add_argument(
        "--rows", type=ROWS, default=20, metavar="N", help="actors shown (default 20)"
    )
    top.add_argument("--once", action="store_true", help="print one table and exit")
    top.add_argument(
        "--interval",
        type=SECONDS,
        default=1.0,
        metavar="SECONDS",
        help="wall seconds between two readings (default 1)",
    )
    top.add_argument(
        "--timeout",
        type=SECONDS,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for an answer (default 5)",
    )


def status_url(url: str, sort: str, rows: int) -> str:
    """The /status URL to read for `url` (``HOST:PORT`` or ``http(s)://HOST:PORT[/...]``).

    Raises:
        TopError: `url` is not an http(s) URL.
    """
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # "http://[::1": an unclosed IPv6 address
        raise TopError(
            f"{_plain(url)} is not the URL of an observation server (http://HOST:PORT)"
        ) from None
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        parts = parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise TopError(
            f"{_plain(url)} is not the URL of an observation server (http://HOST:PORT)"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/status"):
        path += "/status"
    wanted = SORTS[sort]
    query = (
        {"limit": ALL_ACTORS}
        if wanted == "rate"
        else {"sort": "mailbox" if sort == "mailbox" else sort, "limit": rows}
    )
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), "")
    )


def fetch(url: str, timeout: float) -> bytes:
    """GET `url` (blocking): the body of a 200 answer.

    Raises:
        TopError: no answer, an error status, or a body over `MAX_DOCUMENT_BYTES`.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": f"spaceactors/{sa.__version__}"}
    )
    where = url.rsplit("?", 1)[0]
    try:
        with opener.open(request, timeout=timeout) as answer:
            body: bytes = answer.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # its body holds the connection
        raise TopError(
            f"{where} answered {exc.code} {exc.reason}: not a spaceactors observation server?"
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        detail = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise TopError(f"cannot reach {where}: {detail}") from None
    except TimeoutError:
        raise TopError(f"{where} did not answer within {timeout:g} s") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # a reset, not HTTP...
        raise TopError(f"cannot read {where}: {exc}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise TopError(f"{where} answered over {MAX_DOCUMENT_BYTES // 2**20} MiB: not a status")
    return body


def parse(body: bytes, where: str) -> dict[str, Any]:
    """The status document in `body`, checked for what `top` shows.

    Raises:
        TopError: `body` is not a version-1 spaceactors status document.
    """
    problem = f"{where} is not a spaceactors observation server"
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TopError(f"{problem}: its answer is not JSON") from None
    if not isinstance(document, dict) or document.get("version") != 1:
        raise TopError(f"{problem}: its answer is not a status document (version 1)")
    if not isinstance(document.get("actors"), list) or not isinstance(
        document.get("totals"), dict
    ):
        raise TopError(f"{problem}: its status has no actors or totals")
    if not _is_number(document.get("sim_time")) or not _is_number(document.get("wall_time")):
        raise TopError(f"{problem}: its status has no sim_time or wall_time")
    if not all(isinstance(actor, dict) and "path" in actor for actor in document["actors"]):
        raise TopError(f"{problem}: an actor of its status has no path")
    return document


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _count(value: object) -> int:
    return value if type(value) is int else 0


@attrs.define
class Readings:
    """What successive readings tell that one cannot: message rates and the clock's speed."""

    previous: dict[str, Any] | None = None
    handled: dict[str, int] = attrs.Factory(dict)

    def take(self, document: dict[str, Any]) -> View:
        """Rates since the previous reading (None on the first one)."""
        before = self.previous
        seconds = None
        if before is not None:
            seconds = document["wall_time"] - before["wall_time"]
            if seconds <= 0:
                seconds = None
        rates: dict[str, float | None] = {}
        handled: dict[str, int] = {}
        for actor in document["actors"]:
            path = str(actor["path"])
            now = _count(actor.get("handled"))
            handled[path] = now
            then = self.handled.get(path)
            rates[path] = (
                None if seconds is None or then is None else max(now - then, 0) / seconds
            )
        speed = document.get("speed")
        total_rate = None
        if before is not None and seconds is not None:
            if not _is_number(speed):
                speed = (document["sim_time"] - before["sim_time"]) / seconds
            total_rate = (
                max(
                    _count(document["totals"].get("messages_handled"))
                    - _count(before["totals"].get("messages_handled")),
                    0,
                )
                / seconds
            )
        self.previous, self.handled = document, handled
        return View(document, rates, speed if _is_number(speed) else None, total_rate)


@attrs.frozen
class View:
    document: dict[str, Any]
    rates: Mapping[str, float | None]
    speed: float | None
    message_rate: float | None


def _plain(value: object) -> str:
    """Text from the server, shown as text: control characters (a terminal escape, a
    newline) are written as escapes."""
    text = str(value)
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def top_actors(view: View, sort: str, rows: int) -> list[dict[str, Any]]:
    """The `rows` actors first by `sort` (most first; then by path)."""
    field = SORTS[sort]

    def key(actor: dict[str, Any]) -> tuple[float, str]:
        path = str(actor["path"])
        if field == "rate":
            rate = view.rates.get(path)
            value = -1.0 if rate is None else rate
        else:
            value = float(_count(actor.get(field)))
        return (-value, path)

    actors = view.document["actors"]
    if field == "mailbox_depth":  # supervisors and services have no mailbox to rank
        actors = [actor for actor in actors if _count(actor.get("mailbox_capacity")) > 0]
    return sorted(actors, key=key)[:rows]


def render(view: View, url: str, sort: str, rows: int) -> RenderableType:
    """The screen: the clock and totals, then the table of top actors."""
    doc = view.document
    totals = doc["totals"]
    clock = _plain(doc.get("clock", "?"))
    if view.speed is not None:
        speed = f"{view.speed:,.3g}x"
        if doc.get("speed") is None and clock == "virtual":
            speed += " (virtual, flat out)"
    else:  # one reading of a virtual run: it has no set speed, and no second reading yet
        speed = "flat out (virtual)" if clock == "virtual" else "?"
    paused = "  PAUSED" if doc.get("paused") else ""
    header = Text(
        f"spaceactors top  {_plain(url)}  t={doc['sim_time']:,.1f} s  {clock} clock  "
        f"speed {speed}{paused}"
    )
    rate = "" if view.message_rate is None else f" ({view.message_rate:,.0f}/s)"
    line = Text(
        f"actors {_count(totals.get('actors')):,}  "
        f"handled {_count(totals.get('messages_handled')):,}{rate}  "
        f"restarts {_count(totals.get('restarts')):,}  crashes {_count(totals.get('crashes')):,}  "
        f"dead letters {_count(totals.get('dead_letters')):,}  "
        f"reliable retries {_count(totals.get('reliable_retries')):,}, "
        f"failures {_count(totals.get('reliable_failures')):,}"
    )
    shown = top_actors(view, sort, rows)
    total = doc.get("actors_total", len(doc["actors"]))
    table = Table(
        title=f"top {len(shown)} of {_count(total):,} actors by {sort}",
        title_justify="left",
        expand=False,
    )
    for column, right in (
        ("actor", False),
        ("kind", False),
        ("state", False),
        ("mailbox", True),
        ("handled", True),
        ("msg/s", True),
        ("restarts", True),
        ("last crash", False),
    ):
        table.add_column(column, justify="right" if right else "left", overflow="fold")
    for actor in shown:
        path = str(actor["path"])
        rate_now = view.rates.get(path)
        crash = actor.get("last_crash")
        last = ""
        if isinstance(crash, dict):
            when = crash.get("time")
            at = f"t={when:,.1f} s " if _is_number(when) else ""
            last = f"{at}{crash.get('reason', '')}"
        table.add_row(
            Text(_plain(path)),
            Text(_plain(actor.get("kind", ""))),
            Text(_plain(actor.get("state", ""))),
            Text(
                f"{_count(actor.get('mailbox_depth')):,}/{_count(actor.get('mailbox_capacity')):,}"
            ),
            Text(f"{_count(actor.get('handled')):,}"),
            Text("-" if rate_now is None else f"{rate_now:,.1f}"),
            Text(f"{_count(actor.get('restarts')):,}"),
            Text(_plain(last)),
        )
    return Group(header, line, table)


async def watch(
    args: argparse.Namespace,
    console: Console,
    *,
    read: Callable[[str, float], bytes] = fetch,
) -> int:
    """Show the server's status until cancelled (``--once``: one table); returns 0.

    Raises:
        TopError: the server does not answer, or not with a status document.
    """
    url = status_url(args.url, args.sort, args.rows)
    where = url.rsplit("?", 1)[0]
    readings = Readings()

    async def reading() -> View:
        # --timeout bounds the whole answer, not each read: a server that trickles a byte at
        # a time must not hold `top` forever (the abandoned thread ends at its own timeout).
        with trio.move_on_after(args.timeout + 0.5) as waited:
            body = await trio.to_thread.run_sync(read, url, args.timeout, abandon_on_cancel=True)
        if waited.cancelled_caught:
            raise TopError(f"{where} did not answer within {args.timeout:g} s")
        return readings.take(parse(body, where))

    view = await reading()
    if args.once:
        if args.sort == "rate":  # a rate needs two readings
            await trio.sleep(args.interval)
            view = await reading()
        console.print(render(view, args.url, args.sort, args.rows))
        return 0
    if not console.is_terminal:  # a pipe or a file: one table per reading, one after another
        console.print(render(view, args.url, args.sort, args.rows))
        while True:
            await trio.sleep(args.interval)
            view = await reading()
            console.print(render(view, args.url, args.sort, args.rows))
    with Live(
        render(view, args.url, args.sort, args.rows),
        console=console,
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as live:
        while True:
            await trio.sleep(args.interval)
            view = await reading()
            live.update(render(view, args.url, args.sort, args.rows), refresh=True)


def top_console(out: TextIO) -> Console:
    """The console `top` draws on: `out`; wide enough for the table when it is not a
    terminal (``COLUMNS`` sets the width)."""
    terminal = out.isatty()
    width = None if terminal or os.environ.get("COLUMNS") else 160
    return Console(file=out, width=width, highlight=False, emoji=False)


def top_command(args: argparse.Namespace, out: TextIO, signals: Signals) -> int:
    """Run ``spaceactors top``; returns the exit code (an unreadable server raises
    `BadInput`: one line, exit code 2). Ctrl-C ends it at once (exit code 130)."""
    console = top_console(out)
    signals.phase = f"watching {args.url}"
    try:
        with signals.for_trio():
            code: int = trio.run(
                functools.partial(
                    signals.session, lambda stop: watch(args, console), stop_first=False
                )
            )
    except TopError as exc:
        raise BadInput(str(exc)) from None
    return code
