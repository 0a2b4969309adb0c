"""Execution through real zygote and worker processes: results, context, environment,
errors, timeouts, crashes, output capture, warm reuse, concurrency and reaping."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from skylift.errors import Throttled

PROBE = Path(__file__).with_name("probe_app.py")


@pytest.fixture
def probe(live, tmp_path):
    shutil.copy(PROBE, tmp_path / "app.py")
    return live(tmp_path)


def payload(result):
    return json.loads(result.payload)


def test_warm_instance_is_reused_and_keeps_module_state(probe):
    first, second, third = (payload(probe.invoke("counter")) for _ in range(3))
    assert [first["n"], second["n"], third["n"]] == [1, 2, 3]
    assert first["pid"] == second["pid"] == third["pid"] != os.getpid()


def test_cold_start_reports_init_duration_once(probe):
    cold = probe.invoke("counter")
    warm = probe.invoke("counter")
    assert cold.init_ms is not None and cold.init_ms > 0
    assert warm.init_ms is None


def test_context_and_environment_match_lambda(probe, tmp_path):
    result = probe.invoke("inspect", b'{"k": [1, 2]}')
    assert result.error is None
    seen = payload(result)
    assert seen["event"] == {"k": [1, 2]}
    assert seen["function_name"] == "inspect"
    assert seen["function_version"] == "$LATEST"
    assert re.fullmatch(
        r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:inspect", seen["invoked_function_arn"]
    )
    assert seen["memory_limit_in_mb"] == "256"
    assert seen["aws_request_id"] == result.request_id
    assert seen["log_group_name"] == "/aws/lambda/inspect"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", seen["log_stream_name"])
    assert seen["identity"] == [None, None]
    assert seen["client_context"] is None
    assert 2000 < seen["remaining"] <= 3000
    assert seen["cwd"] == str(tmp_path)
    env = seen["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "inspect"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/inspect"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == seen["log_stream_name"]
    assert env["_HANDLER"] == "app.inspect"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path)
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"]
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["TZ"] == ":UTC" and seen["local_zone"] == "UTC"
    assert seen["region_at_import"] == env["AWS_REGION"]
    assert env["GREETING"] == "hi"


def test_unhandled_exception_gives_aws_error_payload(probe):
    result = probe.invoke("boom")
    assert result.error == "Unhandled"
    error = payload(result)
    assert set(error) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert error["errorMessage"] == "bad thing happened"
    assert error["errorType"] == "ValueError"
    assert error["requestId"] == result.request_id
    # The trace starts in the user's code, not in skylift's worker.
    assert 'app.py", line' in error["stackTrace"][0]
    assert "skylift" not in "".join(error["stackTrace"])
    assert b"[ERROR] ValueError: bad thing happened" in result.logs


def test_timeout_kills_the_worker_and_a_new_one_serves_next(probe):
    result = probe.invoke("sleepy")
    error = payload(result)
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        rf"RequestId: {result.request_id} Error: Task timed out after 1\.\d\d seconds",
        error["errorMessage"],
    )
    assert 1000 <= result.duration_ms < 2000
    assert b"going to sleep" in result.logs
    assert payload(probe.invoke("sleepy", b'{"seconds": 0}')) == "awake"


def test_worker_exit_gives_runtime_exit_error_and_is_replaced(probe):
    result = probe.invoke("exits")
    error = payload(result)
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert b"about to exit" in result.logs
    assert probe.invoke("counter").error is None


def test_segfault_is_contained(probe):
    before = payload(probe.invoke("counter"))
    error = payload(probe.invoke("segfault"))
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("signal: segmentation fault")
    after = payload(probe.invoke("counter"))
    assert after["pid"] == before["pid"]  # other functions' instances are untouched


def test_unserializable_result_is_a_marshal_error(probe):
    error = payload(probe.invoke("unserializable"))
    assert error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"].startswith("Unable to marshal response:")


def test_any_result_the_encoder_cannot_write_is_a_marshal_error_and_the_instance_lives(probe):
    first = probe.invoke("unwritable")
    for event in (b'{"kind": "circular"}', b'{"kind": "deep"}'):
        error = payload(probe.invoke("unwritable", event))
        assert error["errorType"] == "Runtime.MarshalError", error
        assert error["errorMessage"].startswith("Unable to marshal response:")
    assert first.init_ms is not None  # the one cold start: the same instance answered all
    assert probe.invoke("unwritable").init_ms is None


def test_response_over_6mb_is_refused_as_lambda_does(probe):
    result = probe.invoke("huge")
    error = payload(result)
    assert result.error == "Unhandled"
    assert error["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291556 bytes)" in error["errorMessage"]
    assert probe.invoke("huge").error == "Unhandled"  # the instance survives it


def test_output_is_captured_per_invocation(probe):
    first = probe.invoke("chatty", b'{"tag": "one"}')
    second = probe.invoke("chatty", b'{"tag": "two"}')
    text = first.logs.decode()
    for line in ("from print one", "from stderr", "from fd 1", "from logging"):
        assert line in text
    assert "[WARNING]\t" in text and first.request_id in text
    assert "one" not in second.logs.decode() and "from print two" in second.logs.decode()


def test_max_concurrency_caps_instances(live, tmp_path):
    shutil.copy(PROBE, tmp_path / "app.py")
    # A caller waits up to `wait` for the one instance (0.5 s by default, then throttled):
    # long enough here for the first invocation to finish on a machine however busy.
    platform = live(tmp_path, wait=60)
    started = time.monotonic()
    results = platform.invoke_many("single", [b"{}"] * 2)  # the second waits its turn (0.3 s)
    elapsed = time.monotonic() - started
    assert all(r.error is None for r in results)
    assert len({payload(r) for r in results}) == 1  # one instance served both
    assert elapsed >= 0.6
    assert platform.platform.pools["single"].size == 1


class Gate:
    """Holds `gated` invocations in their handler until `open()`: a test throttles
    against instances that stay busy as long as it needs, not for a fixed time."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.event = json.dumps({"gate": str(folder)}).encode()

    def wait_started(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(list(self.folder.glob("started-*"))) < count:
            assert time.monotonic() < deadline, "the gated invocations did not start"
            time.sleep(0.01)

    def open(self) -> None:
        (self.folder / "open").touch()


def in_background(platform, function: str, event: bytes) -> concurrent.futures.Future:
    """Invoke `function` without waiting for it; the future gives the result."""
    invocation = platform.platform.invoker.invoke(function, event)
    return asyncio.run_coroutine_threadsafe(invocation, platform.loop)


def test_past_reserved_concurrency_invocations_are_throttled(probe, tmp_path):
    gate = Gate(tmp_path / "gate")
    first = in_background(probe, "gated_single", gate.event)
    gate.wait_started(1)  # the function's one instance is busy until the gate opens
    outcomes = probe.outcomes("gated_single", [gate.event] * 2)
    gate.open()
    assert payload(first.result(60)) == "opened"
    assert all(isinstance(o, Throttled) for o in outcomes)
    assert outcomes[0].reason == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert outcomes[0].limit == 1
    assert probe.platform.pools["gated_single"].throttles == 2


def test_past_the_server_limit_invocations_are_throttled(live, tmp_path):
    shutil.copy(PROBE, tmp_path / "app.py")
    platform = live(tmp_path, concurrency=2)
    gate = Gate(tmp_path / "gate")
    running = [in_background(platform, "gated", gate.event) for _ in range(2)]
    gate.wait_started(2)  # both of the server's slots are busy until the gate opens
    [outcome] = platform.outcomes("gated", [gate.event])
    gate.open()
    assert isinstance(outcome, Throttled)
    assert outcome.reason == "ConcurrentInvocationLimitExceeded"
    assert [payload(r.result(60)) for r in running] == ["opened", "opened"]
    assert platform.invoke("counter").error is None  # slots come back


def test_concurrent_invocations_get_their_own_instances(probe):
    results = probe.invoke_many("parallel", [b"{}"] * 4)
    assert len({payload(r) for r in results}) == 4
    assert probe.platform.pools["parallel"].size == 4


def test_idle_instances_are_reaped(live, tmp_path):
    shutil.copy(PROBE, tmp_path / "app.py")
    # Without the autoscaler (which keeps one warm while there was traffic in its
    # window), the idle time alone decides.
    platform = live(tmp_path, idle_timeout=0.2, policy=None)
    pid = payload(platform.invoke("counter"))["pid"]
    deadline = time.monotonic() + 5
    while platform.platform.pools["counter"].size and time.monotonic() < deadline:
        time.sleep(0.1)
    assert platform.platform.pools["counter"].size == 0
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    assert payload(platform.invoke("counter"))["n"] == 1  # a fresh instance, from the zygote


def test_supervisor_never_imports_user_code(live, tmp_path):
    marker = tmp_path / "imports.log"
    app = tmp_path / "svc"
    app.mkdir()
    (app / "uniquely_named_service.py").write_text(
        "import os\n"
        f"open({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')\n"
        "from skylift import App\n"
        "app = App()\n"
        "@app.function()\n"
        "def f(event, context):\n"
        "    return os.getpid()\n"
    )
    platform = live(app / "uniquely_named_service.py")
    pids = {json.loads(r.payload) for r in platform.invoke_many("f", [b"{}"] * 3)}
    assert "uniquely_named_service" not in sys.modules
    importers = marker.read_text().split()
    assert len(importers) == 1  # the init phase ran once, in the zygote
    assert int(importers[0]) != os.getpid() and int(importers[0]) not in pids


def test_timeout_also_kills_what_the_handler_started(probe, tmp_path):
    pidfile = tmp_path / "child.pid"
    result = probe.invoke("spawner", json.dumps({"pidfile": str(pidfile)}).encode())
    assert payload(result)["errorType"] == "Sandbox.Timedout"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_huge_output_keeps_its_tail_and_bounded_memory(probe):
    result = probe.invoke("flood", b'{"megabytes": 20, "pause": true}')
    assert payload(result) == "done"
    logs = result.logs.decode()
    assert len(result.logs) < (1 << 20) + 200
    assert "earlier bytes of output dropped" in logs
    assert logs.rstrip().endswith("the end")


def test_function_environment_overrides_lambda_defaults(probe):
    seen = payload(probe.invoke("zoned"))
    assert seen["tz"] == "Europe/Berlin" and seen["zone"] in ("CET", "CEST")
    assert seen["lang"] == "C.UTF-8"


def test_a_dead_zygote_is_started_again(probe):
    import signal

    warm = payload(probe.invoke("counter"))["pid"]
    zygote = probe.platform.zygotes[0]
    os.kill(zygote._proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not zygote._closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert payload(probe.invoke("counter"))["pid"] == warm  # warm instances run on
    fresh = probe.invoke("inspect")  # a new instance needs the zygote: it comes back
    assert fresh.error is None and payload(fresh)["function_name"] == "inspect"


def test_a_zygote_dead_before_its_channel_said_so_is_started_again(probe):
    import signal

    zygote = probe.platform.zygotes[0]
    probe.invoke("counter")  # its channel is in use

    async def fork_right_after_its_death():
        os.kill(zygote._proc.pid, signal.SIGKILL)
        zygote._proc.wait()  # blocking: the loop has not read the channel's end yet
        return await zygote.fork("inspect")

    worker = probe.run(fork_right_after_its_death())
    assert os.path.exists(f"/proc/{worker.pid}")  # a new zygote forked it
    zygote.kill(worker.pid)
    worker.channel.close()
    os.close(worker.log_fd)


def test_a_start_cancelled_after_the_fork_leaves_no_worker_or_descriptor(probe):
    import asyncio
    import concurrent.futures

    from skylift.engine.instance import Instance

    zygote = probe.platform.zygotes[0]
    forked: list[int] = []

    class CancelledRightAfterFork:
        """The real zygote; the caller gives up just as the worker exists."""

        async def fork(self, function):
            worker = await zygote.fork(function)
            forked.append(worker.pid)
            asyncio.current_task().cancel()  # lands on the next await: the connect
            return worker

        def kill(self, pid):
            zygote.kill(pid)

        async def exit_status(self, pid, timeout=1.0):
            return await zygote.exit_status(pid, timeout)

    spec = probe.platform.specs["counter"]
    probe.invoke("counter")  # the zygote's own channel and buffers exist already
    fds_before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(concurrent.futures.CancelledError):
        probe.run(Instance.start(spec, CancelledRightAfterFork()))
    assert len(os.listdir("/proc/self/fd")) == fds_before  # its channel and log memfd
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{forked[0]}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{forked[0]}"), "the forked worker was left running"


def test_a_zygote_killed_while_it_starts_again_is_started_once_more(probe):
    """A second kill -9 during the restart's init phase used to leave the function
    without a zygote for good: every cold start failed "the zygote is not running"."""
    import signal
    import threading

    zygote = probe.platform.zygotes[0]
    os.kill(zygote._proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not zygote._closed and time.monotonic() < deadline:
        time.sleep(0.02)
    dead = zygote._proc.pid if zygote._proc else None
    outcome: list[object] = []

    def invoke() -> None:
        try:
            outcome.append(probe.invoke("inspect"))
        except Exception as exc:  # the platform's error for a failed cold start
            outcome.append(exc)

    cold = threading.Thread(target=invoke)
    cold.start()  # a new instance needs the zygote: it starts again...
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        proc = zygote._proc
        if proc is not None and proc.pid != dead:
            os.kill(proc.pid, signal.SIGKILL)  # ...and is killed in its init phase
            break
        time.sleep(0.001)
    cold.join(30)
    assert outcome and "zygote" in str(getattr(outcome[0], "payload", outcome[0]))
    time.sleep(1.1)  # a failed restart is tried again after a pause, not at once
    fresh = probe.invoke("inspect")
    assert fresh.error is None, fresh.payload
    assert payload(fresh)["function_name"] == "inspect"
