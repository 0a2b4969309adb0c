"""What one step of a load test measured, and the knee of a run.

The knee is the highest step before latency or errors give way: p95 more than twice
its unloaded value (the first step's), or more than 1% of requests failing.

>>> knee([Step(1, 100, 0, 2.0, 100, 1, 2, 3), Step(5, 400, 0, 2.0, 400, 2, 9, 12)]).users
1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

LATENCY_FACTOR = 2.0  # p95 past this multiple of its unloaded value: latency has risen
ERROR_LIMIT = 0.01  # more than 1% of requests failing: the service is breaking
FORMAT = "skylift-load/1"


@dataclass(frozen=True)
class Step:
    """One step: `users` sending back to back for `seconds`; latencies in ms."""

    users: int
    requests: int
    failures: int
    seconds: float
    rps: float
    p50: float
    p95: float
    p99: float

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 1.0


def measure(users: int, latencies: Sequence[float], failures: int, seconds: float) -> Step:
    """The step of `users` that saw `latencies` (ms, every request) in `seconds`."""
    ordered = sorted(latencies)
    return Step(
        users=users,
        requests=len(ordered),
        failures=failures,
        seconds=round(seconds, 3),
        rps=round(len(ordered) / seconds, 1) if seconds > 0 else 0.0,
        p50=round(percentile(ordered, 0.50), 2),
        p95=round(percentile(ordered, 0.95), 2),
        p99=round(percentile(ordered, 0.99), 2),
    )


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def holds(step: Step, unloaded_p95: float) -> bool:
    """Whether `step` is still before the knee."""
    return (
        step.requests > 0
        and step.error_ratio <= ERROR_LIMIT
        and step.p95 <= LATENCY_FACTOR * unloaded_p95
    )


def knee(steps: Sequence[Step]) -> Step | None:
    """The highest step before the first one that gives way; None if the first does."""
    if not steps:
        return None
    unloaded = steps[0].p95
    found = None
    for step in steps:
        if not holds(step, unloaded):
            break
        found = step
    return found


def why(step: Step, unloaded_p95: float) -> str:
    """What gave way at `step`, in words."""
    if step.requests == 0:
        return "no request completed"
    if step.error_ratio > ERROR_LIMIT:
        return f"{step.error_ratio:.1%} of requests failed (limit {ERROR_LIMIT:.0%})"
    return f"p95 {step.p95:.1f} ms is over twice the unloaded {unloaded_p95:.1f} ms"


def change(knee_rps: float, baseline_rps: float) -> float:
    """The relative change of the knee's rps against the baseline's (0.1 = 10% more)."""
    return knee_rps / baseline_rps - 1 if baseline_rps > 0 else float("inf")


def to_json(target: str, steps: Sequence[Step], complete: bool) -> dict[str, Any]:
    """The saved run (`--save`), readable again as a `--baseline`."""
    found = knee(steps)
    return {
        "format": FORMAT,
        "target": target,
        "steps": [asdict(s) for s in steps],
        "knee": asdict(found) if found else None,
        # False when the run stopped at a step that gave way: the knee is inside the range
        "ramp_completed": complete,
    }


def knee_rps(saved: dict[str, Any]) -> float:
    """The knee's rps of a saved run, or ValueError saying why there is none."""
    if saved.get("format") != FORMAT:
        raise ValueError(f"not a `skylift load --save` file (format {saved.get('format')!r})")
    found = saved.get("knee")
    if not found:
        raise ValueError("that run found no knee (its first step already gave way)")
    return float(found["rps"])
