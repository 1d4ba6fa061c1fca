"""What the command shows of a run: the progress bar on stderr and the summary at the end."""

from __future__ import annotations

from typing import TextIO

from spaceactors import sim


class ProgressBar:
    """One line on stderr, redrawn in place: simulated time, messages/s, actors, restarts."""

    WIDTH = 24

    def __init__(self, err: TextIO, name: str) -> None:
        self.err = err
        self.name = name

    def __call__(self, progress: sim.Progress) -> None:
        done = min(progress.sim_time / progress.duration, 1.0)
        filled = int(done * self.WIDTH)
        wall = progress.wall_seconds
        rate = progress.messages / wall if wall > 0 else 0.0
        self.err.write(
            f"\r{self.name} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
            f"{progress.sim_time:,.0f}/{progress.duration:,.0f} s  {rate:,.0f} msg/s  "
            f"{progress.actors:,} actors  {progress.restarts} restarts "
        )
        self.err.flush()

    def close(self) -> None:
        self.err.write("\n")
        self.err.flush()


def render_summary(summary: sim.Summary) -> str:
    """The end-of-run report the command prints (a run stopped early says so first)."""
    answer = "-" if summary.max_answer_time is None else f"{summary.max_answer_time:.1f} s"
    if summary.interrupted_at is None:
        ran = f"{summary.duration:,.0f} s"
    else:
        ran = f"interrupted at t={summary.interrupted_at:,.1f} s of {summary.duration:,.0f} s"
    lines = [
        f"scenario {summary.scenario}: seed {summary.seed}, {ran} simulated "
        f"in {summary.wall_seconds:.1f} s",
        f"  fleet        {summary.ships:,} ships, {summary.stations} stations, "
        f"{summary.ship_updates:,} ship updates",
        f"  dockings     {summary.dockings:,} (refused {summary.refusals:,}, "
        f"evicted {summary.evictions:,})",
        f"  trades       {summary.trades:,} ({summary.traded_units:,.0f} units)",
        f"  distress     {summary.distress_calls} calls, {summary.rescues} rescues, "
        f"{summary.unanswered} unanswered, slowest answer {answer}",
        f"  hazards      {summary.hazard_entries} entries, {summary.fuel_exhausted} out of fuel",
        f"  restarts     {summary.restarts}",
        f"  dead letters {summary.dead_letters}",
        f"  messages     {summary.messages:,}",
    ]
    lines += [f"    {name:<22} {count:>10,}" for name, count in summary.messages_by_type.items()]
    if summary.interrupted_at is not None:
        lines.append(
            f"  expectations not checked: the run was interrupted at "
            f"t={summary.interrupted_at:,.1f} s"
        )
        return "\n".join(lines) + "\n"
    held = sum(ok for _, ok, _ in summary.expectations)
    lines.append(f"  expectations {held}/{len(summary.expectations)} met")
    for description, ok, why in summary.expectations:
        mark = "ok  " if ok else "FAIL"
        lines.append(f"    {mark} {description}" + (f" ({why})" if why else ""))
    return "\n".join(lines) + "\n"
