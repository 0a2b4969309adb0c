"""The short form of `make chaos` (bench/chaos.py): kill -9 of the server, its zygote and
instances, and a full disk, during a mixed load of HTTP requests, SQS sends and async
invokes; then a truncated queue database between runs. Nothing acknowledged is lost."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import chaos  # bench/ is not a package: found through sys.path


def test_nothing_acknowledged_is_lost_when_processes_die_and_the_disk_fills(tmp_path):
    with chaos.small_disk() as disk:
        if disk is None and os.environ.get("CI") == "true":
            pytest.fail("the chaos run needs a tmpfs to fill (root) in CI")
        result = chaos.run(tmp_path, duration=30, disk=disk, drain=60)
    print(chaos.report(result, "pytest tests/chaos"))
    faults = result.faults
    assert faults["server"] == 1 and faults["zygote"] == 1 and faults["instance"] == 3
    assert faults["zygote (none running)"] == 0
    assert faults["instance (none running)"] < faults["instance"]
    assert faults["unexpected server exit"] == 0, "the server died without being killed"
    assert disk is None or faults["disk"] == 1
    assert result.acked["queue"] > 50 and result.acked["async"] > 50
    assert result.lost == {}, f"acknowledged but never delivered: {result.lost}"
    assert result.orphans == [], "processes of the killed server outlived it"
    assert result.http_ok > 0
    assert result.tracebacks == [], "internal errors in the server's log"
    assert result.longest_outage < 15, "the server was unreachable for too long"
    damaged = result.damaged_start
    assert damaged["half"].startswith("exit 2: ") and "is damaged" in damaged["half"]
    assert damaged["empty"].startswith("exit 2: ") and "is empty" in damaged["empty"]
    assert damaged["restored"] == "served again"
