"""Pool.update (UpdateFunctionConfiguration's effect) through real zygotes and workers:
callers waiting for a busy instance of a function at its limit get a new one with the
new spec, and no instance started before the update serves after it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

APP = """
import os
import time

from skylift import App

app = App()


@app.function(max_concurrency=1, environment={"MODE": "first"})
def single(event, context):
    time.sleep(event.get("seconds", 0))
    return {"mode": os.environ.get("MODE"), "pid": os.getpid()}
"""


def test_a_waiter_behind_a_busy_instance_gets_one_with_the_new_spec(
    live: Any, tmp_path: Any
) -> None:
    (tmp_path / "app.py").write_text(APP)
    platform = live(tmp_path, wait=20)
    first = platform.invoke("single").decoded()
    assert first["mode"] == "first"
    pool = platform.platform.pools["single"]
    changed = dataclasses.replace(pool.spec, environment={"MODE": "second"})

    async def scenario() -> list[Any]:
        invoker = platform.platform.invoker
        busy = asyncio.ensure_future(invoker.invoke("single", b'{"seconds": 0.5}'))
        while pool.busy == 0:
            await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(invoker.invoke("single", b"{}"))
        while pool.waiting == 0:
            await asyncio.sleep(0.01)
        pool.update(changed)
        return [json.loads((await call).payload) for call in (busy, waiting)]

    old, new = platform.run(scenario())
    assert old == {"mode": "first", "pid": first["pid"]}  # the busy one finished as it began
    assert new["mode"] == "second" and new["pid"] != first["pid"]
    assert pool.size == 1  # the old instance was retired, not kept beside the new one
    assert platform.invoke("single").decoded() == new  # and the new one is reused
