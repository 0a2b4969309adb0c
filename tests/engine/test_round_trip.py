"""The supervisor-worker round trip: events decoded as the Lambda runtime decodes them,
results encoded as it encodes them, the callback-completed fast path, warm-up before
the first invocation, and the worker's scheduling and context switches."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from skylift.engine.instance import InvocationResult
from skylift.engine.invoker import Soon

APP = """
import os
from skylift import App

app = App("roundtrip")
seen = {"n": 0}


@app.function()
def echo(event, context):
    seen["n"] += 1
    return {"event": event, "n": seen["n"]}


@app.function()
def unicode(event, context):
    return {"text": "caf\\u00e9 \\u2603", "f": 1e16, "small": 1e-05, "nested": [1, {"a": None}]}


@app.function()
def scheduling(event, context):
    return os.sched_getscheduler(0)


@app.function()
def switches(event, context):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
"""


def write_app(directory, source=APP):
    (directory / "app.py").write_text(source)
    return directory


@pytest.fixture
def app(live, tmp_path):
    return live(write_app(tmp_path))


@pytest.mark.parametrize(
    "event",
    [
        b'{"big": 1180591620717411303424, "neg": -9223372036854775809}',
        b'{"edge": 18446744073709551615, "small": -9223372036854775808}',
        b'{"x": NaN, "y": Infinity, "z": -Infinity}',
        b'{"huge": 1e400, "s": "\\ud800"}',
        b'\xef\xbb\xbf{"bom": true}',
        b'{"unicode": "caf\\u00e9", "float": 0.1, "list": [1.5, true, null]}',
    ],
)
def test_the_handler_sees_the_event_as_the_stdlib_reads_it(app, event):
    result = app.invoke("echo", event)
    assert result.error is None, result.payload
    # The result is encoded with the stdlib, so what it decodes back is what the
    # handler saw: exact big integers, NaN and infinities, lone surrogates.
    expected = json.loads(event)
    assert (
        result.payload
        == json.dumps({"event": expected, "n": json.loads(result.payload)["n"]}).encode()
    )


def test_an_event_that_is_not_json_fails_as_the_stdlib_says(app):
    result = app.invoke("echo", b'{"a": 1} trailing')
    assert result.error == "Unhandled"
    error = json.loads(result.payload)
    assert error["errorType"] == "JSONDecodeError"
    assert error["errorMessage"] == "Extra data: line 1 column 10 (char 9)"


def test_results_keep_the_lambda_runtimes_bytes(app):
    # ", " and ": " separators, ASCII escapes and Python's float repr, as json.dumps writes.
    result = app.invoke("unicode")
    assert result.payload == (
        b'{"text": "caf\\u00e9 \\u2603", "f": 1e+16, "small": 1e-05, "nested": [1, {"a": null}]}'
    )


def _batch_permitted() -> bool:
    code = "import os; os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.mark.skipif(not _batch_permitted(), reason="this host does not permit SCHED_BATCH")
def test_workers_run_under_sched_batch(app):
    assert json.loads(app.invoke("scheduling").payload) == os.SCHED_BATCH


def test_a_worker_sleeps_once_per_invocation(app):
    # It waits for the next invocation in poll(), which the supervisor's read of the last
    # answer does not wake (a recv() there woke and slept again: two switches each time).
    counts = [json.loads(app.invoke("switches").payload) for _ in range(110)]
    per_invocation = (counts[-1] - counts[10]) / (len(counts) - 11)
    assert per_invocation < 1.2, counts


def test_invoke_soon_answers_from_the_channel_when_an_instance_is_idle(app):
    invoker = app.platform.invoker

    async def soon() -> tuple[Soon | None, Soon | None, InvocationResult]:
        got: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        cold = invoker.invoke_soon("echo", b"{}", got.set_result)  # no instance yet
        await invoker.invoke("echo", b"{}")  # starts one, idle afterwards
        started = invoker.invoke_soon("echo", b'{"k": 1}', got.set_result)
        return cold, started, await got

    cold, started, result = app.run(soon())
    assert cold is None and started is not None
    assert result.request_id == started.request_id and result.error is None
    assert json.loads(result.payload) == {"event": {"k": 1}, "n": 2}
    assert app.platform.pools["echo"].status()["busy"] == 0  # given back


def test_cancelling_an_invocation_that_finished_leaves_its_instance_serving(app):
    invoker = app.platform.invoker
    told: list[str] = []
    invoker.cancel_observers.append(lambda spec, request_id, seconds: told.append(request_id))

    async def soon() -> tuple[InvocationResult, InvocationResult]:
        await invoker.invoke("echo", b"{}")  # an idle instance for the fast path
        got: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        started = invoker.invoke_soon("echo", b"{}", got.set_result)
        assert started is not None
        first = await got
        started.cancel()  # too late: a shutdown must not kill the instance it gave back
        return first, await invoker.invoke("echo", b"{}")

    first, after = app.run(soon())
    assert first.error is None and after.error is None and told == []
    assert json.loads(after.payload)["n"] == json.loads(first.payload)["n"] + 1  # same one


def test_a_warm_up_runs_no_user_code_and_the_first_invocation_reports_init(live, tmp_path):
    source = APP.replace("@app.function()\ndef echo", "@app.function(min_instances=1)\ndef echo")
    platform = live(write_app(tmp_path, source))
    pool = platform.platform.pools["echo"]
    platform.run(pool.fill())
    assert pool.status()["prewarmed"] >= 1
    first = platform.invoke("echo")
    assert json.loads(first.payload)["n"] == 1  # the warm-up did not call the handler
    assert first.init_ms is not None and first.init_ms > 0
    assert platform.invoke("echo").init_ms is None


def test_a_failing_observer_costs_neither_the_result_nor_the_instance(app):
    invoker = app.platform.invoker

    def broken(spec, result, instance):  # type: ignore[no-untyped-def]
        raise RuntimeError("an observer's bug")

    first = app.invoke("echo")
    invoker.observers.append(broken)
    try:
        second = app.invoke("echo")
    finally:
        invoker.observers.remove(broken)
    third = app.invoke("echo")
    assert first.error is None and second.error is None and third.error is None
    # The same warm instance served all three: the observer's error did not kill it.
    assert [json.loads(r.payload)["n"] for r in (first, second, third)] == [1, 2, 3]
    assert app.platform.pools["echo"].status()["instances"] == 1
