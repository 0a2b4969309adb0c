"""The dashboard's rates and percentiles: over their windows, from the scraped registry."""

from __future__ import annotations

import asyncio
from typing import Any

from pytest import approx

from skylift.engine.instance import InvocationResult
from skylift.observe.dashboard_data import Board
from skylift.observe.metrics import Metrics
from skylift.observe.metrics_http import MetricsEndpoint
from skylift.spec import FunctionSpec

SPEC = FunctionSpec(name="f", handler="app.f", code_dir=".")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def invoke(metrics: Metrics, count: int, ms: float, *, error: bool = False) -> None:
    for _ in range(count):
        result = InvocationResult(
            "id",
            b'{"errorMessage": "x"}' if error else b"null",
            "Unhandled" if error else None,
            b"",
            ms,
        )
        metrics(SPEC, result)


def function(board: Board) -> dict[str, Any]:
    (found,) = asyncio.run(board.snapshot())["functions"]
    assert found["name"] == "f"
    return dict(found)


def test_rates_and_percentiles_cover_their_windows() -> None:
    metrics, clock = Metrics({}), Clock()
    board = Board(MetricsEndpoint(metrics, None), clock)
    invoke(metrics, 4, 1.0)  # before the page opened: in the totals, not in the rates
    first = function(board)
    assert (first["rps"], first["p50"], first["p99"]) == (None, None, None)
    assert first["invocations"] == 4
    clock.now += 5
    invoke(metrics, 10, 4.0)  # 2.5-5 ms bucket
    shown = function(board)
    assert shown["rps"] == 10 / 5
    assert shown["p50"] == approx(
        0.0025 + 0.0025 * 5 / 10
    )  # histogram_quantile, linear in the bucket
    assert shown["invocations"] == 14 and shown["errors"] == 0
    # Within MIN_GAP, tabs share a snapshot: nothing new is read.
    invoke(metrics, 1, 4.0)
    assert function(board)["invocations"] == 14
    # 12 s later: the rate since the newest snapshot at or before 10 s ago (one call in
    # 12 s), and the p50 of everything since the page opened (less than a minute ago).
    clock.now += 12
    quiet = function(board)
    assert quiet["rps"] == 1 / 12
    assert quiet["p50"] == approx(0.0025 + 0.0025 * 5.5 / 11)
    # A minute and more later, errors only: p50 counts only what ran in the window.
    clock.now += 61
    invoke(metrics, 3, 300.0, error=True)  # 250-500 ms
    late = function(board)
    assert late["errors"] == 3 and late["invocations"] == 18
    assert late["rps"] == 3 / 61
    assert late["p50"] == approx(0.25 + 0.25 * 1.5 / 3)
    # No invocations in the last minute: no percentile to show.
    clock.now += 70
    assert function(board)["p50"] is None
