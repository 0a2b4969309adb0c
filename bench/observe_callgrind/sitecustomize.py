"""Loaded by the `skylift up` that `bench/observe_callgrind.py` runs under callgrind (this
folder on its PYTHONPATH, SKYLIFT_BENCH_DILATE set): the server runs there about 90
times slower, so observing's timers are stretched as much, for its batches to hold as
many results as at full speed: the intake's 0.1 s, the log writer's 0.25 s and the event
log's 0.5 s (the alert policy's interval is stretched in the app's skylift.toml by the
bench). It says so on the server's stderr, which the bench checks: a default that is no
longer there raises (Python then says "Error in sitecustomize"), and another
sitecustomize earlier on the path would keep this one from loading."""

import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

_dilate = float(os.environ.pop("SKYLIFT_BENCH_DILATE", "0") or 0)


def _stretch(function: Callable[..., Any], name: str) -> None:
    """Multiply `function`'s default for the parameter `name` by the dilation."""
    with_defaults = [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.default is not p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    defaults = list(function.__defaults__ or ())
    defaults[with_defaults.index(name)] *= _dilate  # ValueError if it is gone
    function.__defaults__ = tuple(defaults)


if _dilate:
    from skylift.observe.events import EventLog
    from skylift.observe.intake import Intake
    from skylift.observe.logs_store import LogStore

    _stretch(Intake.__init__, "interval")
    _stretch(LogStore.__init__, "interval")
    _stretch(EventLog.__init__, "interval")
    print(f"skylift bench: observing's timers stretched x{_dilate:g}", file=sys.stderr)
