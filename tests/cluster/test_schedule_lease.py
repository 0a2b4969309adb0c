"""A schedule on two `skylift up` nodes sharing Redis fires once per tick, and keeps
firing every tick when the node holding its lease is killed.

`--schedule-speed 30` makes `rate(1 minute)` tick every 2 seconds (the lease then lasts
1/3 s), so several ticks and a hand-over fit in a test.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from cluster_helpers import (
    URL,
    async_in_flight,
    cluster,
    nodes,
    redis_prefix,
    reports,
    write_apps,
)

__all__ = ["redis_prefix"]  # a fixture, used by name

APP = """
    @app.schedule("rate(1 minute)")
    def tick(event, context):
        report(time=event["time"])
"""
PERIOD = 2.0  # seconds: a minute at speed 30


def ticks(found: list[dict[str, str]]) -> list[float]:
    return [datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() for r in found]


def test_each_tick_fires_once_across_nodes_and_survives_the_holder(
    tmp_path: Path, redis_prefix: str
) -> None:
    state = f"{URL}?prefix={redis_prefix}"
    options = ["--quiet", "--schedule-speed", "30", "--state", state]
    # A generous wait (an upper bound only): 4 ticks' reports can take more than 30 s on
    # a machine loaded far past its cores, and so can a node's start.
    with nodes(write_apps(tmp_path, APP), options, timeout=120) as [url_one, url_two]:
        before = reports(url_one, 4, timeout=120)
        view = cluster(state)
        [holder] = view["schedules"].values()
        [node] = [n for n in view["nodes"] if n["id"] == holder]
        survivor = url_two if node["url"] == url_one else url_one
        # Kill between two ticks, when no tick's invocation is in flight on any node (one
        # cut off would come back only after its visibility timeout, and might run twice):
        # at once after the check, by the pid read beforehand (asking `skylift status`
        # for it takes a second or more on a busy machine, time for the next tick).
        time.sleep(PERIOD / 2)
        while async_in_flight(state, "tick"):
            time.sleep(0.05)
        os.kill(node["pid"], signal.SIGKILL)
        after = reports(survivor, 5, timeout=120)
        [new_holder] = cluster(state)["schedules"].values()
    found = sorted(ticks(before + after))
    assert len(found) == 9
    assert Counter(found).most_common(1)[0][1] == 1  # no tick fired twice
    steps = {round(b - a, 1) for a, b in itertools.pairwise(found)}
    assert steps == {PERIOD}  # and none was missed, across the hand-over
    assert new_holder != holder
