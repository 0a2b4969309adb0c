"""A schedule on two `skylift up` nodes sharing Redis fires once per tick, and keeps
firing every tick when the node holding its lease is killed.

`--schedule-speed 30` makes `rate(1 minute)` tick every 2 seconds (the lease then lasts
1/3 s), so several ticks and a hand-over fit in a test.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from cluster_helpers import (
    URL,
    async_in_flight,
    cluster,
    kill,
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
    with nodes(write_apps(tmp_path, APP), options) as [url_one, url_two]:
        before = reports(url_one, 4)
        schedules = cluster(state)["schedules"]
        [holder] = schedules.values()
        [killed] = [u for u in (url_one, url_two) if kill_candidate(state, u) == holder]
        survivor = url_two if killed == url_one else url_one
        # Kill between two ticks, when no tick's invocation is in flight on any node (one
        # cut off would come back only after its visibility timeout, and might run twice).
        time.sleep(PERIOD / 2)
        while async_in_flight(state, "tick"):
            time.sleep(0.05)
        assert kill(killed, state) == holder
        after = reports(survivor, 5)
        [new_holder] = cluster(state)["schedules"].values()
    found = sorted(ticks(before + after))
    assert len(found) == 9
    assert Counter(found).most_common(1)[0][1] == 1  # no tick fired twice
    steps = {round(b - a, 1) for a, b in itertools.pairwise(found)}
    assert steps == {PERIOD}  # and none was missed, across the hand-over
    assert new_holder != holder


def kill_candidate(state: str, url: str) -> str:
    [node] = [n for n in cluster(state)["nodes"] if n["url"] == url]
    return str(node["id"])
