"""A test app for `skylift describe` and `skylift replay`: it fails in every way the
platform records, and has a handler the replay test fixes while the server runs."""

import os
import time

from skylift import App

app = App("described")


@app.function(timeout=1)
def troubled(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit") is not None:
        os._exit(event["exit"])
    return {"ok": event}


@app.function()
def adder(event, context):
    raise ValueError(f"cannot add {event['numbers']} yet")  # the replay test fixes this


@app.function()
def echo(event, context):
    return {"size": len(event.get("blob", ""))}


@app.function()
def gated(event, context):
    return "open"


@app.function(memory=128, timeout=30)  # a loaded machine fills memory slowly
def hog(event, context):
    blocks = []
    for _ in range(64):  # 1 GiB: past the 128 MB limit
        blocks.append(bytearray(16 * 1024 * 1024))
    return len(blocks)
