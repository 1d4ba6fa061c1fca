"""Whether a long run's memory stays flat after warm-up: sampled, compared, never timed.

`MemoryProbe` samples how many memory blocks Python's allocator holds (`sys.getallocatedblocks`,
after a full garbage collection: every live object but the largest buffers, so a leak of
anything per message shows) every `every` messages once `warm_up` have gone by. It costs
nothing between samples, so it runs inside the soak itself (``tracemalloc`` would slow the
run tenfold, and measure a different run). The run is
flat when the highest sample of the second half of the measurement is no higher than the
highest of the first half plus a tolerance: a leak grows with every message, so it lifts the
later peak; the ordinary ebb and flow of what is in flight (a fuller mailbox, a burst of
retries) lifts both halves alike. Peaks, not single samples, so one busy moment does not decide.

The figures are counts, measured in a seeded run in virtual time: the same seed gives the same
samples, so the verdict does not flake with the machine's load.
"""

from __future__ import annotations

import gc
import sys

import attrs

TOLERANCE_BLOCKS = 5_000
"""Slack for the later peak over the earlier one (what is in flight ebbs and flows)."""
TOLERANCE_PER_MESSAGE = 0.05
"""...plus this many blocks per message measured: a leak of one object per message is twenty
times more, the jitter of a flat run far less."""


@attrs.frozen
class MemoryCheck:
    """Allocated-block samples taken every `every` messages, after `warm_up` of them."""

    warm_up: int
    every: int
    samples: tuple[int, ...]

    @property
    def messages(self) -> int:
        """How many messages went by between the first sample and the last."""
        return self.every * max(len(self.samples) - 1, 0)

    @property
    def growth(self) -> int:
        """Blocks the later half's peak exceeds the earlier half's by (negative: it fell)."""
        half = len(self.samples) // 2
        if half == 0:
            return 0
        return max(self.samples[half:]) - max(self.samples[:half])

    @property
    def tolerance(self) -> float:
        """The growth allowed before the run counts as leaking, in blocks."""
        return TOLERANCE_BLOCKS + TOLERANCE_PER_MESSAGE * self.messages

    @property
    def flat(self) -> bool:
        """At least four samples, and the later peak within `tolerance` of the earlier."""
        return len(self.samples) >= 4 and self.growth <= self.tolerance

    def render(self) -> str:
        """One line: the samples' range, the growth and the verdict."""
        if not self.samples:
            return "no samples (the run ended before its warm-up)"
        return (
            f"{len(self.samples)} samples every {self.every:,} after {self.warm_up:,}: "
            f"{min(self.samples):,}..{max(self.samples):,} blocks, later peak "
            f"{self.growth:+,} (allowed {self.tolerance:,.0f}) -> "
            + ("flat" if self.flat else "GROWING")
        )


@attrs.define
class MemoryProbe:
    """Samples the allocated blocks as the caller's messages go by: call `passed(n)` after
    the n-th (n = 1, 2, ...; sent, or settled: the caller says what counts)."""

    warm_up: int
    every: int
    samples: list[int] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        if self.warm_up < 0 or self.every < 1:
            raise ValueError(
                f"a memory probe needs warm_up >= 0 and every >= 1, got "
                f"warm_up={self.warm_up}, every={self.every}"
            )

    def due(self, count: int) -> bool:
        """Whether a sample is due once the `count`-th message has gone by."""
        return count >= self.warm_up and (count - self.warm_up) % self.every == 0

    def passed(self, count: int) -> None:
        """The `count`-th message has gone by: sample if one is due."""
        if self.due(count):
            gc.collect()
            self.samples.append(sys.getallocatedblocks())

    def result(self) -> MemoryCheck:
        return MemoryCheck(self.warm_up, self.every, tuple(self.samples))
