"""What the command shows at the end of a run: the summary (text, and JSON for ``--summary-json``),
and the one-line errors of its output."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import attrs

from spaceactors import sim
from spaceactors.checks import shorten
from spaceactors.sim.scenario import Restarter


def render_summary(summary: sim.Summary) -> str:
    """The end-of-run report the command prints: a run stopped early says so first. Counted
    once the run's system closed, so its numbers are the trace's (see `sim.Summary`)."""
    answer = _seconds_or_dash(summary.max_answer_time)
    rescue = _seconds_or_dash(summary.max_rescue_time)
    reasons = ", ".join(f"{n} {reason}" for reason, n in summary.dead_letters_by_reason.items())
    if summary.interrupted_at is None:
        ran = f"{summary.duration:,.0f} s"
    else:
        ran = f"interrupted at t={summary.interrupted_at:,.1f} s of {summary.duration:,.0f} s"
    lines = [
        f"scenario {summary.scenario}: seed {summary.seed}, {ran} simulated "
        f"in {summary.wall_seconds:.1f} s",
        f"  fleet        {summary.ships:,} ships, {summary.stations} stations, "
        f"{summary.ship_updates:,} ship updates",
        f"  dockings     {summary.dockings:,} by {summary.ships_docked:,} ships "
        f"(refused {summary.refusals:,}, evicted {summary.evictions:,})",
        f"  trades       {summary.trades:,} ({summary.traded_units:,.0f} units)",
        f"  distress     {summary.distress_calls} calls, {summary.rescues} rescues, "
        f"{summary.unanswered} unanswered; slowest: accepted {answer}, alongside {rescue}",
        f"  hazards      {summary.hazard_entries} entries, {summary.fuel_exhausted} out of fuel",
        f"  restarts     {summary.restarts} (ships and stations)"
        + ("; most:" if summary.top_restarters else ""),
        *_restarter_lines(summary.top_restarters),
        f"  dead letters {summary.dead_letters}" + (f" ({reasons})" if reasons else ""),
        f"  messages     {summary.messages:,} delivered by the router, "
        f"{summary.reliable_sends:,} reliable transmissions, "
        f"{summary.unheard_publishes:,} publishes heard by nobody",
    ]
    lines += [f"    {name:<22} {count:>10,}" for name, count in summary.messages_by_type.items()]
    lines.append(
        f"  trace hash   {summary.trace_hash}"
        if summary.trace_hash is not None
        else "  trace hash   - (not recorded: --trace FILE records the trace)"
    )
    if summary.unrun_events and summary.interrupted_at is None:
        times = ", ".join(f"{when:g} s" for when in summary.unrun_events)
        lines.append(
            f"  events       {len(summary.unrun_events)} never ran: due at or after the end "
            f"({times})"
        )
    if summary.unmatched_faults:
        lines.append(f"  faults       {len(summary.unmatched_faults)} rule(s) did nothing:")
        lines += [f"    {unmatched}" for unmatched in summary.unmatched_faults]
    if summary.interrupted_at is not None:
        lines.append(
            f"  expectations not checked: the run was interrupted at "
            f"t={summary.interrupted_at:,.1f} s"
        )
        return "\n".join(lines) + "\n"
    skipped = len(summary.not_checked)
    failed = sum(not ok for _, ok, _ in summary.expectations)
    met = len(summary.expectations) - failed - skipped
    lines.append(
        f"  expectations {met}/{len(summary.expectations)} met"
        + (f", {skipped} not checked" if skipped else "")
    )
    for description, ok, why in summary.expectations:
        mark = "FAIL" if not ok else ("skip" if why else "ok  ")
        lines.append(f"    {mark} {description}" + (f" ({why})" if why else ""))
    return "\n".join(lines) + "\n"


def _restarter_lines(restarters: tuple[Restarter, ...]) -> list[str]:
    return [
        f"    {r.name:<22} {r.restarts:>10,}  last: {_one_line(r.last_cause)}"
        for r in restarters
    ]


def _one_line(cause: str | None) -> str:
    return shorten(" ".join(cause.split())) if cause else "no crash of its own"


def summary_document(summary: sim.Summary) -> dict[str, Any]:
    """The whole summary as the JSON object ``--summary-json`` writes: every field of
    `sim.Summary` under its own name (times in simulated seconds, ``null`` when there is
    none), ``top_restarters`` as objects (``name``, ``restarts``, ``last_cause``),
    ``expectations`` as objects (``description``, ``held``, ``why``), plus ``passed`` and
    ``not_checked``; ``version`` is 1."""
    data = attrs.asdict(summary, recurse=True)
    data["expectations"] = [
        {"description": description, "held": held, "why": why}
        for description, held, why in summary.expectations
    ]
    return {"version": 1, **data, "passed": summary.passed, "not_checked": summary.not_checked}


def write_summary_json(path: str, summary: sim.Summary) -> None:
    """Write `summary_document` to `path` (replaced whole: written beside it, then renamed).

    Raises:
        OSError: it cannot be written, or `path` is not a regular file (a device, a pipe or a
            link would be replaced by the rename, not written to).
    """
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise OSError(errno.EINVAL, f"{path} is not a regular file (a device, pipe or link)")
    partial = target.with_name(f".{target.name}.partial")
    text = json.dumps(summary_document(summary), indent=2, allow_nan=False) + "\n"
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, target)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()


def _seconds_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


class OutputLost(Exception):
    """stdout could not be written (full, closed): one line on stderr, exit code 2."""


def write_output(out: TextIO | None, text: str, trace: str | None = None) -> None:
    """Write `text` to stdout and flush it; `OutputLost` if it cannot be written."""
    try:
        if out is None:
            raise OSError(errno.EBADF, "stdout is closed")
        out.write(text)
        out.flush()
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        kept = f" (the trace {trace} is complete)" if trace else ""
        raise OutputLost(f"cannot write to stdout: {exc.strerror or exc}{kept}") from None


def say(err: TextIO | None, line: str) -> None:
    """Write the command's last line on stderr; a full or closed stderr is left silent."""
    try:
        if err is None:
            return
        err.write(line + "\n")
        err.flush()
    except (OSError, ValueError):
        silence(sys.stderr)


def silence(stream: TextIO | None) -> None:
    """Point a standard stream at /dev/null, so that Python's final flush does not fail again."""
    if stream is not None and stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
