"""Spawn mode (`spawn=True`) through real processes: each instance is a fresh interpreter
that imports the code itself, and behaves like a forked worker in everything else."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.processes import marked
from skylift.engine.driver import start_instance

APP = """
import os
import subprocess
import sys
import threading
import time

from skylift import App

app = App()
IMPORTED_IN = os.getpid()
# Import-time state that does not survive a fork: a thread.
ticker = threading.Thread(target=time.sleep, args=(3600,), daemon=True)
ticker.start()
print("imported in", IMPORTED_IN)
hooks = []


@app.after_fork
def remember():
    hooks.append(os.getpid())


def state():
    return {
        "pid": os.getpid(),
        "imported_in": IMPORTED_IN,
        "thread_alive": ticker.is_alive(),
        "hooks": hooks,
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
    }


@app.function(spawn=True)
def spawned(event, context):
    print("invoked with", event.get("tag"))
    sys.stderr.write("to stderr\\n")
    time.sleep(event.get("sleep", 0))
    return state()


@app.function()
def forked(event, context):
    return state()


@app.function(spawn=True, timeout=1)
def stuck(event, context):
    return sleep_with_a_child(event)


@app.function(spawn=True, timeout=60)
def busy(event, context):
    return sleep_with_a_child(event)


def sleep_with_a_child(event):
    child = subprocess.Popen(["sleep", event.get("marker", "300")])
    if "pidfile" in event:
        with open(event["pidfile"], "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
    print("going to sleep")
    time.sleep(event.get("seconds", 5))
    return os.getpid()


@app.function(spawn=True)
def exits(event, context):
    print("about to exit")
    os._exit(3)
"""

# The zygote imports it at once; an instance spawned once a marker exists, slowly or not.
MARKED_IMPORT = """
import os
import sys
import time
from skylift import App

if os.path.exists("slow"):
    time.sleep(1.5)
if os.path.exists("broken"):
    import module_that_does_not_exist
if os.path.exists("exit"):
    print("giving up at import")
    sys.exit(4)

app = App()


@app.function(spawn=True, timeout=1)
def fragile(event, context):
    return "imported"
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      CodeUri: src/
      Handler: reader.handler
      Environment:
        Variables:
          TABLE: orders
"""

READER = """
import os
TABLE = os.environ["TABLE"]  # read at import: set before it, as on Lambda
IMPORTED_IN = os.getpid()
print("reader imported")
def handler(event, context):
    return {"table": TABLE, "imported_in": IMPORTED_IN, "pid": os.getpid()}
"""


@pytest.fixture
def app(live, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return live(tmp_path)


def payload(result):
    return json.loads(result.payload)


def test_a_spawned_instance_keeps_what_its_import_started(app):
    spawned = payload(app.invoke("spawned"))
    assert spawned["pid"] == spawned["imported_in"] != os.getpid()
    assert spawned["thread_alive"]
    forked = payload(app.invoke("forked"))
    assert forked["pid"] != forked["imported_in"]  # imported once, in the zygote
    assert not forked["thread_alive"]  # a fork keeps only the forking thread


def test_each_instance_is_a_process_of_its_own(app):
    results = app.invoke_many("spawned", [b'{"sleep": 0.5}'] * 2)
    pids = {payload(r)["pid"] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(payload(r)["imported_in"] == payload(r)["pid"] for r in results)


def test_the_first_invocation_reports_the_import_and_output_is_captured(app):
    cold = app.invoke("spawned", b'{"tag": "one"}')
    warm = app.invoke("spawned", b'{"tag": "two"}')
    assert payload(cold)["pid"] == payload(warm)["pid"]
    assert cold.init_ms is not None and cold.init_ms > 0 and warm.init_ms is None
    logs = cold.logs.decode()
    assert f"imported in {payload(cold)['pid']}" in logs
    assert "invoked with one" in logs and "to stderr" in logs
    assert warm.logs.decode().splitlines() == ["invoked with two", "to stderr"]
    assert payload(cold)["function"] == "spawned"


def test_after_fork_hooks_run_once_in_each_spawned_instance(app):
    first = payload(app.invoke("spawned"))
    second = payload(app.invoke("spawned"))
    assert first["hooks"] == second["hooks"] == [first["pid"]]


def test_a_timeout_kills_the_instance_and_what_it_started(app, tmp_path):
    pidfile = tmp_path / "pids"
    result = app.invoke("stuck", json.dumps({"pidfile": str(pidfile)}).encode())
    error = payload(result)
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        rf"RequestId: {result.request_id} Error: Task timed out after 1\.\d\d seconds",
        error["errorMessage"],
    )
    # The timeout counts from the invocation, not from the start of the import.
    assert 1000 <= result.duration_ms < 2000
    assert b"going to sleep" in result.logs
    for pid in pidfile.read_text().split():
        wait_gone(int(pid))
    again = app.invoke("stuck", json.dumps({"pidfile": str(pidfile), "seconds": 0}).encode())
    assert again.error is None and again.init_ms is not None  # a fresh instance


def test_an_exit_gives_runtime_exit_error_with_its_status(app):
    result = app.invoke("exits")
    error = payload(result)
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3"
    )
    assert b"about to exit" in result.logs
    assert app.invoke("spawned").error is None


def test_a_slow_import_does_not_count_against_the_timeout(live, tmp_path):
    (tmp_path / "app.py").write_text(MARKED_IMPORT)
    platform = live(tmp_path)
    (tmp_path / "slow").touch()
    result = platform.invoke("fragile")
    assert payload(result) == "imported"
    assert result.init_ms is not None and result.init_ms >= 1500
    assert result.duration_ms < 1000


def test_an_import_error_answers_every_invocation(live, tmp_path):
    (tmp_path / "app.py").write_text(MARKED_IMPORT)
    platform = live(tmp_path)
    (tmp_path / "broken").touch()
    for _ in range(2):
        result = platform.invoke("fragile")
        error = payload(result)
        assert result.error == "Unhandled"
        assert error["errorType"] == "Runtime.ImportModuleError"
        assert error["errorMessage"] == (
            "Unable to import module 'app': No module named 'module_that_does_not_exist'"
        )


def test_an_exit_during_the_import_gives_runtime_exit_error(live, tmp_path):
    (tmp_path / "app.py").write_text(MARKED_IMPORT)
    platform = live(tmp_path)
    (tmp_path / "exit").touch()
    result = platform.invoke("fragile")
    assert payload(result)["errorType"] == "Runtime.ExitError"
    assert payload(result)["errorMessage"].endswith("Runtime exited with error: exit status 4")
    assert result.logs == b"giving up at import\n"


def test_a_busy_instance_does_not_outlive_its_server(tmp_path):
    # Sandboxed (the default): the instance can write nothing on the host and its pids
    # are its namespace's, so its child is found by a marker in its command line.
    (tmp_path / "app.py").write_text(APP)
    marker = "300.4242"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"marker": marker, "seconds": 60}))
    command = [sys.executable, "-m", "skylift.cli", "invoke", "busy", str(tmp_path), "-e", event]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (found := _running_sleep(marker)):
            assert time.monotonic() < deadline, "the handler never started"
            time.sleep(0.05)
        child = found[0]
        with open(f"/proc/{child}/stat") as f:
            handler = int(f.read().rsplit(")", 1)[1].split()[1])  # the sleep's parent
    finally:
        server.kill()  # no clean shutdown: only the closed channel tells the instance
        server.wait()
    for pid in (handler, child):
        wait_gone(pid)
    # Nor does anything of its sandbox: the waiting parent and the namespace's PID 1.
    for pid in _started_for(tmp_path):
        wait_gone(pid)


def _started_for(app: Path) -> list[int]:
    """Processes whose environment names `app` (spawned instances carry its setup)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environment = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if str(app).encode() in environment:
                found.append(int(entry))
    return found


def _running_sleep(marker: str) -> list[int]:
    return [pid for pid in marked(marker) if _alive(pid)]


def test_a_sam_function_spawns_with_its_environment_set_before_the_import(tmp_path):
    from skylift.sam import load

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "reader.py").write_text(textwrap.dedent(READER))
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (spec,), _ = load(str(tmp_path / "template.yaml"))

    async def twice() -> tuple[list[object], str | None]:
        instance = await start_instance(replace(spec, spawn=True), None)
        try:
            results = [await instance.invoke(f"id-{n}", b"{}") for n in range(2)]
        finally:
            instance.close()
        return results, await instance.parent.exit_status(instance.pid, 5)

    results, status = asyncio.run(twice())
    first, second = (payload(r) for r in results)
    assert first == second
    assert first["table"] == "orders" and first["pid"] == first["imported_in"]
    assert b"reader imported" in results[0].logs
    assert status in ("exit status 0", "signal: killed")  # it ends once closed


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or going (ESRCH mid-exit)
        return False


def test_kept_warm_instances_that_die_at_import_are_retried_slowly(live, tmp_path):
    (tmp_path / "app.py").write_text(
        MARKED_IMPORT.replace("spawn=True,", "spawn=True, min_instances=2,")
    )
    platform = live(tmp_path, state_dir=tmp_path / "state")
    (tmp_path / "exit").touch()  # every new instance now exits during its init phase
    platform.run(platform.platform.start_sources())
    pool = platform.platform.pools["fragile"]
    time.sleep(3)
    # Not a restart loop (a tick is 0.25 s): after the first failures it waits 5 s.
    assert pool.size <= 2
    assert pool.cold_starts == 0 and pool.prewarmed <= 4


def test_spawned_processes_no_loop_saw_end_are_reaped_when_the_interpreter_exits():
    """A spawned instance is reaped when its event loop sees it end; one whose loop
    stopped first (an in-process platform's, whose closed channel ends the instance on
    the loop's next turn) is reaped at exit, and killed if it still runs: none outlives
    the process, none is left to Popen's finaliser ("subprocess N is still running")."""
    from skylift.engine import spawner

    running = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    ended = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{ended.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the short process never ended"
        time.sleep(0.01)
    spawner._UNREAPED.update({running.pid: running, ended.pid: ended})
    try:
        spawner._reap_left()  # what atexit runs
        assert ended.returncode == 0
        assert running.returncode == -9  # killed with its group, and reaped
        assert running.pid not in spawner._UNREAPED and ended.pid not in spawner._UNREAPED
    finally:
        for process in (running, ended):
            spawner._UNREAPED.pop(process.pid, None)
            if process.returncode is None:
                process.kill()
                process.wait()
