"""``spaceactors trace summary|show|diff``: read trace files and render what they say (the
analysis is `spaceactors.trace_analysis`; this module only parses options and prints)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any, TextIO

from spaceactors.cli.arguments import COUNT, TIME
from spaceactors.cli.report import write_output
from spaceactors.cli.run import EXIT_FAILED, EXIT_PASSED, BadInput
from spaceactors.cli.signals import Signals
from spaceactors.trace import EventKind, TraceEvent, trace_hash
from spaceactors.trace_analysis import (
    Divergence,
    TraceSummary,
    first_divergence,
    select,
    summarize,
)
from spaceactors.tracefile import load_trace

_SUPERVISION = frozenset(
    {EventKind.CRASH, EventKind.RESTART, EventKind.STOP, EventKind.GIVE_UP}
)  # their peer is the supervisor, not a sender
_CAUSE_CHARS = 160
"""How much of a crash's words a summary line shows."""


def add_trace_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``trace`` and its three subcommands to the command's subparsers."""
    trace = commands.add_parser("trace", help="read trace files: summary, show, diff")
    tools = trace.add_subparsers(
        dest="tool", required=True, metavar="TOOL", parser_class=type(trace)
    )
    summary = tools.add_parser(
        "summary", help="counts by kind, actor and message type; restarts; dead letters; hash"
    )
    summary.add_argument("file", metavar="FILE", help="a trace (.jsonl, .ndjson, .sqlite, .db)")
    summary.add_argument(
        "--top", type=COUNT, default=10, help="show the N most frequent of each (0: all; 10)"
    )
    show = tools.add_parser("show", help="the events, one line each, filtered")
    show.add_argument("file", metavar="FILE", help="a trace (.jsonl, .ndjson, .sqlite, .db)")
    show.add_argument(
        "--actor",
        action="append",
        default=[],
        metavar="NAME",
        help="events whose actor or peer is NAME ('ship-*' matches by prefix; repeatable)",
    )
    show.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=[kind.value for kind in EventKind],
        metavar="KIND",
        help="events of this kind (send, handle, crash, dead_letter, ...; repeatable)",
    )
    show.add_argument("--from", dest="start", type=TIME, metavar="T", help="from time T (s)")
    show.add_argument("--to", dest="end", type=TIME, metavar="T", help="up to time T (s)")
    diff = tools.add_parser("diff", help="the first event where two traces differ (exit 1)")
    diff.add_argument("first", metavar="A", help="a trace")
    diff.add_argument("second", metavar="B", help="the trace to compare it with")
    diff.add_argument(
        "--context", type=COUNT, default=3, help="events shown around the difference (3)"
    )


def trace_command(args: argparse.Namespace, out: TextIO, signals: Signals) -> int:
    """Run ``spaceactors trace ...``; returns the exit code (bad input raises `BadInput`)."""
    if args.tool == "summary":
        events = _load(args.file, signals)
        write_output(out, render_summary(args.file, summarize(events), args.top))
        return EXIT_PASSED
    if args.tool == "show":
        start = -math.inf if args.start is None else args.start
        end = math.inf if args.end is None else args.end
        if start > end:
            raise BadInput(f"--from {start:g} is after --to {end:g}: no event can be in between")
        events = _load(args.file, signals)
        kinds = {EventKind(kind) for kind in args.kind}
        chosen = select(events, actors=args.actor, kinds=kinds, start=start, end=end)
        lines = [event_line(number, event) for number, event in chosen]
        lines.append(f"{len(chosen):,} of {len(events):,} events")
        write_output(out, "\n".join(lines) + "\n")
        return EXIT_PASSED
    first, second = _load(args.first, signals), _load(args.second, signals)
    signals.phase = "comparing the traces"
    divergence = first_divergence(first, second, args.context)
    write_output(out, render_diff(args.first, first, args.second, second, divergence))
    return EXIT_PASSED if divergence is None else EXIT_FAILED


def _load(path: str, signals: Signals) -> list[TraceEvent]:
    signals.phase = f"reading the trace {path}"
    try:
        return load_trace(path)
    except OSError as exc:
        raise BadInput(f"cannot read the trace {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # the place first: "run.jsonl:12: not a trace event: ..."
        raise BadInput(str(exc)) from None


def _text(value: str) -> str:
    """`value` on one line: characters that are not printable (newlines, terminal escapes)
    shown escaped, as in a Python string."""
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


def _cut(value: str, limit: int = _CAUSE_CHARS) -> str:
    value = _text(value)
    return value if len(value) <= limit else value[:limit] + "..."


def event_line(number: int, event: TraceEvent) -> str:
    """One event on one line: its position, time, kind, actor, peer, message type, id, detail."""
    parts = [f"{number:>7}  {event.time:>14.6f}  {event.kind.value:<11}", _text(event.actor or "-")]
    if event.peer is not None:
        word = "under" if event.kind in _SUPERVISION else "from"
        parts.append(f"{word} {_text(event.peer)}")
    if event.message_type is not None:
        parts.append(_text(event.message_type))
    if event.message_id is not None:
        parts.append(f"#{event.message_id}")
    if event.detail:
        parts.append(f"| {_text(event.detail)}")
    return " ".join(parts)


def _ranked_lines(counts: dict[str | None, int], top: int, nobody: str) -> list[str]:
    shown = list(counts.items()) if top == 0 else list(counts.items())[:top]
    lines = [f"    {_text(key) if key is not None else nobody:<24} {n:>10,}" for key, n in shown]
    if len(shown) < len(counts):
        rest = sum(n for _, n in list(counts.items())[len(shown) :])
        lines.append(f"    ... {len(counts) - len(shown):,} more ({rest:,} events)")
    return lines


def render_summary(path: str, summary: TraceSummary, top: int) -> str:
    """The report of ``spaceactors trace summary``; its last line is the trace hash."""
    if summary.start is None or summary.end is None:
        span = "no events"
    else:
        span = f"{summary.events:,} events from t={summary.start:g} s to t={summary.end:g} s"
    lines = [f"trace {path}: {span}"]
    lines.append("  by kind")
    lines += [f"    {kind:<24} {n:>10,}" for kind, n in summary.by_kind.items()]
    lines.append(f"  by actor ({len(summary.by_actor):,})")
    lines += _ranked_lines(summary.by_actor, top, "(no actor)")
    lines.append(f"  by message type ({len(summary.by_message_type):,})")
    lines += _ranked_lines(summary.by_message_type, top, "(no message)")
    restarts = summary.restarts if top == 0 else summary.restarts[:top]
    lines.append(f"  restarts {len(summary.restarts):,}")
    for restart in restarts:
        if restart.cause is None:
            why = "no crash before it in the trace"
        elif restart.crashed == restart.actor:
            why = f"it crashed: {_cut(restart.cause)}"
        else:
            why = f"with {_text(restart.crashed or '-')}, which crashed: {_cut(restart.cause)}"
        lines.append(
            f"    t={restart.time:g} s  {_text(restart.actor or '-')} under "
            f"{_text(restart.supervisor or '-')} ({_text(restart.detail)}): {why}"
        )
    _more(lines, len(summary.restarts), len(restarts))
    reasons = ", ".join(f"{n:,} {_text(r)}" for r, n in summary.dead_letters_by_reason.items())
    letters = summary.dead_letters if top == 0 else summary.dead_letters[:top]
    counted = f"  dead letters {len(summary.dead_letters):,}"
    lines.append(counted + (f" ({reasons})" if reasons else ""))
    for letter in letters:
        sender = "" if letter.sender is None else f" from {_text(letter.sender)}"
        lines.append(
            f"    t={letter.time:g} s  {_text(letter.message_type or 'a message')} to "
            f"{_text(letter.actor or '-')}{sender}: {_text(letter.reason)}"
        )
    _more(lines, len(summary.dead_letters), len(letters))
    lines.append(f"hash {summary.hash}")
    return "\n".join(lines) + "\n"


def _more(lines: list[str], total: int, shown: int) -> None:
    if shown < total:
        lines.append(f"    ... {total - shown:,} more (--top 0 shows all)")


def render_diff(
    first_path: str,
    first: Sequence[TraceEvent],
    second_path: str,
    second: Sequence[TraceEvent],
    divergence: Divergence | None,
) -> str:
    """The report of ``spaceactors trace diff``; its last line says whether they differ."""
    if divergence is None:
        return (
            f"{first_path} and {second_path} are identical: {len(first):,} events, "
            f"trace hash {trace_hash(first)}\n"
        )
    at = divergence.index + 1
    lines = [
        f"A = {first_path} ({len(first):,} events), B = {second_path} ({len(second):,} events)"
    ]
    start = at - len(divergence.before)
    lines += [f"  = {event_line(n, e)}" for n, e in enumerate(divergence.before, start=start)]
    for label, event in (("A", divergence.first), ("B", divergence.second)):
        shown = "(the trace ended)" if event is None else event_line(at, event)
        lines.append(f"  {label} {shown}")
    if divergence.first is not None and divergence.second is not None:
        fields = ", ".join(_field(divergence, name) for name in divergence.fields)
        lines.append(f"    differs in {fields}")
    for label, after in (("A", divergence.after_first), ("B", divergence.after_second)):
        lines += [f"  {label} {event_line(n, e)}" for n, e in enumerate(after, start=at + 1)]
    lines.append(f"the traces differ from event {at:,} on")
    return "\n".join(lines) + "\n"


def _field(divergence: Divergence, name: str) -> str:
    one, two = (getattr(e, name) for e in (divergence.first, divergence.second))
    if isinstance(one, EventKind) and isinstance(two, EventKind):
        one, two = one.value, two.value
    return f"{name} ({_cut(repr(one), 80)} vs {_cut(repr(two), 80)})"
