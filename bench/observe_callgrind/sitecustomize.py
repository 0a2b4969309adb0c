"""Loaded by the `skylift up` that `bench/observe_callgrind.py` runs under callgrind (this
folder on its PYTHONPATH, SKYLIFT_BENCH_DILATE set): the server runs there about 90
times slower, so observing's timers are stretched as much, for its batches to hold as
many results as at full speed (the intake's 0.1 s, the log writer's 0.25 s; the alert
policy's interval is stretched in the app's skylift.toml by the bench)."""

import os

_dilate = float(os.environ.pop("SKYLIFT_BENCH_DILATE", "0") or 0)
if _dilate:
    from skylift.observe import intake as _intake
    from skylift.observe import logs_store as _logs_store

    _intake.INTERVAL *= _dilate
    _intake.Intake.__init__.__defaults__ = ((), _intake.INTERVAL)
    _defaults = list(_logs_store.LogStore.__init__.__defaults__ or ())
    _defaults[-1] *= _dilate  # interval, the last
    _logs_store.LogStore.__init__.__defaults__ = tuple(_defaults)
