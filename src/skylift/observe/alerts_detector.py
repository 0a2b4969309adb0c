"""Three-sigma detection of one series (a function's error rate, a queue's age, ...).

Each sample is judged against the mean and standard deviation of the samples before it
(the rolling window), then joins the window unless it was itself beyond `notify_at`:
an outage must not become the baseline it is judged by, or a sustained one would look
normal (and resolve itself) within a few samples. Only rises count: a function getting
faster or a queue emptying wakes nobody. Time is passed in (`now`), never read, so the
`for` duration and the cool-down are tested without sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    NONE = 0
    NOTIFY = 1  # beyond notify_at (2 sigma): the channels hear of it
    PAGE = 2  # beyond page_at (3 sigma): the primary is paged


class RollingStats:
    """Mean and (population) standard deviation of the last `size` values, by Welford's
    updates: adding and removing a value is O(1) and stays accurate for long runs, where
    the naive sum of squares loses precision to cancellation."""

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque()
        self.size = size
        self.mean = 0.0
        self._m2 = 0.0  # sum of squared differences from the mean

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def stddev(self) -> float:
        return math.sqrt(max(self._m2, 0.0) / len(self.values)) if self.values else 0.0

    def add(self, value: float) -> None:
        if len(self.values) == self.size:
            self._remove(self.values.popleft())
        self.values.append(value)
        delta = value - self.mean
        self.mean += delta / len(self.values)
        self._m2 += delta * (value - self.mean)

    def _remove(self, value: float) -> None:
        remaining = len(self.values)  # after the popleft
        if remaining == 0:
            self.mean = self._m2 = 0.0
            return
        delta = value - self.mean
        self.mean -= delta / remaining
        self._m2 -= delta * (value - self.mean)


@dataclass(frozen=True)
class Judgement:
    """One sample judged: its level now, and the level that has held for `for` (fires)."""

    value: float
    mean: float
    stddev: float
    sigma: float
    level: Level
    firing: Level


class Detector:
    def __init__(
        self,
        *,
        window: int,
        min_samples: int,
        hold: float,
        notify_at: float,
        page_at: float,
        floor: float,
    ) -> None:
        self.stats = RollingStats(window)
        self.min_samples = min_samples
        self.hold = hold
        self.thresholds = {Level.NOTIFY: notify_at, Level.PAGE: page_at}
        self.floor = floor
        # Since when each level has held without a break (None: not now).
        self.since: dict[Level, float | None] = {Level.NOTIFY: None, Level.PAGE: None}

    def observe(self, now: float, value: float) -> Judgement:
        """Judge `value` against the window so far, then add it to the window."""
        mean, stddev = self.stats.mean, self.stats.stddev
        sigma = 0.0
        if self.stats.count >= self.min_samples:
            sigma = (value - mean) / max(stddev, self.floor)
        if sigma < self.thresholds[Level.NOTIFY]:
            self.stats.add(value)
        level = Level.NONE
        for candidate, threshold in self.thresholds.items():
            if sigma >= threshold:
                level = max(level, candidate)
                if self.since[candidate] is None:
                    self.since[candidate] = now
            else:
                self.since[candidate] = None
        firing = Level.NONE
        for candidate, started in self.since.items():
            if started is not None and now - started >= self.hold:
                firing = max(firing, candidate)
        return Judgement(value, mean, stddev, sigma, level, firing)
