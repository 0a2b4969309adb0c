"""A Prometheus histogram's counts, kept as plain ints (one increment per observation)
and turned into cumulative buckets when scraped (`metrics.py`)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Histogram:
    """Counts per bucket (not cumulative: one increment per observation) and a sum."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def observe_many(self, values: Sequence[float], scale: float = 1.0) -> None:
        """Observe each of `values` divided by `scale` (one call for a batch): sorted
        once, then each bucket's share found by bisection (no Python step per value)."""
        ordered = sorted(values)  # in the same order as divided by `scale` (> 0)
        counts, find = self.counts, bisect.bisect_right
        scaled = None if scale == 1.0 else (lambda value: value / scale)
        below = 0
        for index, bound in enumerate(self.bounds):
            # How many are <= bound once divided, as `observe` counts them.
            at = find(ordered, bound, below, key=scaled)
            counts[index] += at - below
            below = at
        counts[-1] += len(ordered) - below
        self.total += sum(ordered) / scale

    def add(self, counts: Sequence[int], total: float) -> None:
        """Add counts per bucket (as `observe` counts them) and their sum, counted
        elsewhere (a collector's tallies: `observe/collect.py`)."""
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.total += total

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, as the exposition format wants them, ending with +Inf."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((repr(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out
