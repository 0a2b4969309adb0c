"""Instances kept warm (min_instances, like provisioned concurrency), and the after-fork
hook, through real zygotes and workers."""

from __future__ import annotations

import json
import os
import signal
import time

APP = """
import os
from skylift import App

app = App()
state = {"forked_in": None}


@app.after_fork
def remember():
    state["forked_in"] = os.getpid()


@app.function(min_instances=2)
def warm(event, context):
    return {"pid": os.getpid(), "forked_in": state["forked_in"]}


@app.function()
def lazy(event, context):
    return os.getpid()
"""

FAILING_HOOK = """
from skylift import App

app = App()


@app.after_fork
def connect():
    raise ConnectionError("database unreachable")


@app.function()
def needs_db(event, context):
    return "never"
"""


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_min_instances_are_warm_before_the_first_invocation_and_kept(live, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    platform = live(tmp_path, idle_timeout=0.2, state_dir=tmp_path / "state")
    pools = platform.platform.pools
    assert pools["warm"].size == 0  # nothing warm until a server starts its sources
    platform.run(platform.platform.start_sources())
    assert pools["warm"].size == 2 and pools["lazy"].size == 0
    first = platform.invoke("warm")
    assert first.init_ms is not None  # its first invocation, on a pre-started instance
    time.sleep(1.5)  # several idle timeouts: the floor stays
    assert pools["warm"].size == 2
    victim = json.loads(first.payload)["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not os.path.exists(f"/proc/{victim}") or _zombie(victim))
    # Replaced: two instances again, none of them the one that was killed.
    wait_until(
        lambda: (
            pools["warm"].size == 2
            and all(i.alive and i.pid != victim for i in pools["warm"]._idle)
        )
    )
    assert json.loads(platform.invoke("warm").payload)["pid"] != victim


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] == "Z"
    except FileNotFoundError:
        return True


def test_after_fork_hooks_run_in_each_new_instance(live, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    platform = live(tmp_path)
    seen = json.loads(platform.invoke("warm").payload)
    assert seen["forked_in"] == seen["pid"] != os.getpid()


def test_a_failing_after_fork_hook_fails_the_invocations(live, tmp_path):
    (tmp_path / "app.py").write_text(FAILING_HOOK)
    result = live(tmp_path).invoke("needs_db")
    error = json.loads(result.payload)
    assert result.error == "Unhandled" and error["errorType"] == "ConnectionError"
    assert "after_fork hook connect failed: database unreachable" in error["errorMessage"]
    assert b"after_fork hook connect failed" in result.logs


def test_every_invocation_after_a_failed_hook_gets_the_hook_s_error(live, tmp_path):
    (tmp_path / "app.py").write_text(FAILING_HOOK)
    platform = live(tmp_path)
    # Back to back: the instance that failed must not be handed the next invocation
    # while it exits (which would answer Runtime.ExitError instead).
    kinds = [json.loads(platform.invoke("needs_db").payload)["errorType"] for _ in range(6)]
    assert kinds == ["ConnectionError"] * 6


IDLE = """
import os
from skylift import App

app = App()


@app.function(idle_timeout=0.3)
def brief(event, context):
    return os.getpid()


@app.function()
def lasting(event, context):
    return os.getpid()
"""


def test_a_function_s_idle_timeout_overrides_the_server_s(live, tmp_path):
    (tmp_path / "app.py").write_text(IDLE)
    # The autoscaler off: it would keep one instance warm while its window saw traffic.
    platform = live(tmp_path, idle_timeout=300, policy=None)
    pools = platform.platform.pools
    platform.invoke("brief")
    platform.invoke("lasting")
    assert pools["brief"].idle_timeout == 0.3 and pools["lasting"].idle_timeout == 300
    wait_until(lambda: pools["brief"].size == 0, timeout=5)
    assert pools["lasting"].size == 1


SLEEPY = """
import time
from skylift import App

app = App()


@app.function(max_concurrency=3)
def nap(event, context):
    time.sleep(event.get("s", 0))
    return "rested"
"""


def test_a_limit_lowered_while_warming_is_never_exceeded(live, tmp_path):
    import asyncio

    from skylift.errors import Throttled

    (tmp_path / "app.py").write_text(SLEEPY)
    platform = live(tmp_path, policy=None)
    pool = platform.platform.pools["nap"]

    async def scenario():
        busy = asyncio.ensure_future(platform.platform.invoker.invoke("nap", b'{"s": 1.0}'))
        while pool.busy < 1:
            await asyncio.sleep(0.01)
        pool.set_limits(minimum=3)  # warming starts a second instance in the background
        await asyncio.sleep(0)
        pool.set_limits(minimum=0, maximum=1)  # ...and the limit falls under it
        await asyncio.sleep(0.3)  # the start in flight has finished
        try:
            second = await platform.platform.invoker.invoke("nap", b"{}")
        except Throttled as exc:
            second = exc
        await busy
        return second, pool.size

    second, size = platform.run(scenario())
    assert isinstance(second, Throttled)  # one may run at a time now, and one was running
    assert size <= 1
