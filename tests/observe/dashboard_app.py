"""A test app for the dashboard: a function that fails on demand, one that fails every
other call, one limited to a single instance (so parallel calls are throttled), a queue."""

import itertools
import time

from skylift import App

app = App("dashboard")
app.declare_queue("backlog")  # nothing consumes it: its oldest message only ages
_calls = itertools.count()


@app.function()
def pay(event, context):
    print(f"paying {event.get('amount', 0)}")
    if event.get("fail"):
        raise RuntimeError("card declined")
    return {"ok": True}


@app.function()
def flaky(event, context):
    if next(_calls) % 2:
        raise RuntimeError("flaky failed")
    return {"ok": True}


@app.function(max_concurrency=1)
def single(event, context):
    time.sleep(0.6)
    return {"ok": True}
