"""The instance sandbox, tried as an adversary would: each escape is a handler, and the
server, the zygote and other functions keep serving. Real `skylift up`, real processes."""

from __future__ import annotations

import base64
import errno
import json
import os
import signal
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from engine.processes import marked
from skylift.testing import ServerLog, serve

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
MARKER = "987654"  # a sleep argument no other process on the host uses

APP = f"""
    import os, signal, subprocess, sys, time
    from skylift import App

    app = App()
    app.declare_queue("orders")

    @app.function()
    def look(event, context):
        seen = {{"pid": os.getpid(), "ppid": os.getppid()}}
        seen["procs"] = sorted(p for p in os.listdir("/proc") if p.isdigit())
        try:
            os.kill(event["victim"], signal.SIGKILL)
            seen["kill"] = "sent"
        except OSError as exc:
            seen["kill"] = type(exc).__name__
        try:
            with open(event["state"], "rb") as f:
                seen["state"] = len(f.read())
        except OSError as exc:
            seen["state"] = type(exc).__name__
        try:
            with open(os.path.join(os.path.dirname(__file__), "app.py"), "a") as f:
                f.write("# changed")
            seen["code"] = "written"
        except OSError as exc:
            seen["code"] = type(exc).__name__
        import ctypes
        seen["init_trace"] = ctypes.CDLL(None).ptrace(16, 1, 0, 0)  # PTRACE_ATTACH to PID 1
        try:  # PID 1 shares the memory of the sandbox's parent, outside: not readable
            open("/proc/1/mem", "rb").close()
            seen["init_mem"] = "opened"
        except OSError as exc:
            seen["init_mem"] = type(exc).__name__
        try:  # PID 1's root is the host's file system: it must not open
            seen["init_root"] = len(os.listdir("/proc/1/root" + os.path.dirname(event["state"])))
        except OSError as exc:
            seen["init_root"] = type(exc).__name__
        with open("/tmp/mine", "a") as f:
            f.write("x")
        open("/tmp/mine-" + event.get("mark", "x"), "w").close()
        seen["tmp"] = sorted(os.listdir("/tmp"))
        seen["tmp_size"] = os.path.getsize("/tmp/mine")
        return seen

    @app.function(memory=128)
    def hog(event, context):
        blocks = []
        for _ in range(64):
            blocks.append(bytearray(16 * 1024 * 1024))
        return len(blocks)

    @app.function(timeout=1)
    def escape(event, context):
        subprocess.Popen(["sleep", "{MARKER}"], start_new_session=True)
        if os.fork() == 0:  # a double fork, as a daemon does
            os.setsid()
            subprocess.Popen(["sleep", "{MARKER}"])
            os._exit(0)
        time.sleep(5)  # past the timeout: the instance is killed

    @app.function()
    def undo_mounts(event, context):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        results = {{}}
        for path in (event["state_dir"], "/proc", "/"):
            results[path] = libc.umount2(path.encode(), 2)  # MNT_DETACH
        # A remount writable of the root, the code folder's mount included.
        results["remount"] = libc.mount(None, b"/", None, 32 | 4096, None)
        try:
            results["state"] = sorted(os.listdir(event["state_dir"]))
        except OSError as exc:
            results["state"] = type(exc).__name__
        try:
            with open(os.path.join(os.path.dirname(__file__), "app.py"), "a") as f:
                f.write("# changed")
            results["code"] = "written"
        except OSError as exc:
            results["code"] = type(exc).__name__
        results["procs"] = sorted(p for p in os.listdir("/proc") if p.isdigit())
        return results

    @app.function(timeout=1)
    def leave(event, context):
        import ctypes
        ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # clear the parent-death signal
        os.setsid()  # and leave the process group
        subprocess.Popen(["sleep", "{MARKER}"])
        time.sleep(60)  # far past the timeout: it must be killed, not left to end

    @app.function(max_concurrency=1)  # one instance: each call sees what the last did
    def streams(event, context):
        import io, logging
        action = event["do"]
        if action == "close_fds":
            os.close(0)
            os.close(1)
            os.close(2)
            return [action, os.getpid()]  # and returns normally
        if action == "replace":
            sys.stdout = io.StringIO()
        elif action == "none":
            sys.stdout = sys.stderr = None
            return [action, os.getpid()]
        elif action == "close_and_fail":
            sys.stdout.close()
            raise ValueError("boom")
        print("still logging")
        logging.getLogger("app").warning("still warning")
        return [action, os.getpid()]

    @app.function()
    def peek(event, context):
        return sorted(os.listdir("/tmp"))

    # Writing 600 MB takes ~1 s on a quiet machine, more under load: past the default 3 s.
    @app.function(memory=1024, ephemeral_storage=600, timeout=30)
    def fill_tmp(event, context):
        written = 0
        try:
            with open("/tmp/big", "wb") as f:
                while True:
                    f.write(bytes(1024 * 1024))
                    f.flush()
                    written += 1
        except OSError as exc:
            return {{"errno": exc.errno, "written_mb": written}}

    @app.function()
    def terminate(event, context):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)
        return "survived its own SIGTERM"

    @app.function()
    def orphans(event, context):
        # The shell ends at once; its background sleep is orphaned, then ends too.
        subprocess.run(["sh", "-c", "sleep 0.1 & exit 0"], check=True)
        time.sleep(0.6)
        states = {{}}
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            with open(f"/proc/{{pid}}/stat") as f:
                states[pid] = f.read().rsplit(")", 1)[1].split()[0]
        return states

    @app.function()
    def innocent(event, context):
        import logging
        print("still logging")
        logging.getLogger("app").warning("still warning")
        return "fine"
"""


def write_app(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(APP))
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = write_app(tmp_path_factory.mktemp("sandboxed"))
    log = ServerLog()
    with serve(str(app), log=log) as url:
        deadline = time.monotonic() + 10  # the sandbox line follows "serving on"
        while "sandbox:" not in log.text and time.monotonic() < deadline:
            time.sleep(0.02)
        if "own PID/mount/IPC namespaces" not in log.text:
            if os.environ.get("CI") == "true":
                pytest.fail(f"the sandbox has no namespaces under CI: {log.text}")
            pytest.skip(f"namespaces unavailable here: {log.text}")
        yield url, app, log


def invoke(url: str, function: str, event: Any = None) -> tuple[dict[str, Any], str]:
    lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
    answer = lam.invoke(
        FunctionName=function, Payload=json.dumps(event or {}).encode(), LogType="Tail"
    )
    lam.close()
    payload = json.loads(answer["Payload"].read())
    if "FunctionError" in answer:
        payload = {"error": payload}
    return payload, base64.b64decode(answer["LogResult"]).decode()


def test_an_instance_sees_only_itself_and_cannot_touch_the_server(server):
    url, app, _ = server
    server_pid = json.loads((app / ".skylift" / "server.json").read_text())["pid"]
    state = str(app / ".skylift" / "queues.db")
    seen, _ = invoke(url, "look", {"victim": server_pid, "state": state})
    # PID 1 is the sandbox's init; the serving process comes second, its parent outside.
    assert seen["pid"] == 2 and seen["ppid"] == 0
    assert seen["procs"] == ["1", "2"]
    assert seen["init_root"] == seen["init_mem"] == "PermissionError"
    assert seen["init_trace"] == -1
    assert seen["kill"] == "ProcessLookupError"  # the server's pid names nothing in there
    assert seen["state"] == "FileNotFoundError"  # .skylift/ is hidden
    assert seen["code"] == "OSError"  # read-only
    assert (app / "app.py").read_text() == textwrap.dedent(APP)
    os.kill(server_pid, 0)  # still alive
    assert invoke(url, "innocent")[0] == "fine"


def test_tmp_is_private_to_an_instance_and_goes_with_it(server):
    url, _, _ = server
    event = {"victim": 999999, "state": "/nonexistent"}
    first, _ = invoke(url, "look", event)
    second, _ = invoke(url, "look", event)  # the same warm instance keeps its /tmp
    assert second["tmp_size"] == first["tmp_size"] + 1
    assert "mine" in first["tmp"]


def test_tmp_is_not_the_hosts_nor_another_functions(server):
    url, _, _ = server
    mark = uuid.uuid4().hex
    seen, _ = invoke(url, "look", {"victim": 999999, "state": "/nonexistent", "mark": mark})
    assert f"mine-{mark}" in seen["tmp"]
    assert not Path(f"/tmp/mine-{mark}").exists()  # nothing of it on the host
    assert f"mine-{mark}" not in invoke(url, "peek")[0]


def test_tmp_has_the_functions_ephemeral_storage_size(server):
    url, _, _ = server
    seen, _ = invoke(url, "fill_tmp")
    assert seen["errno"] == errno.ENOSPC  # the handler's own OSError, not a crash
    assert 590 <= seen["written_mb"] <= 600
    # The next invocation of that instance finds its full /tmp; another instance its own.
    lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
    config = lam.get_function_configuration(FunctionName="fill_tmp")
    lam.close()
    assert config["EphemeralStorage"] == {"Size": 600}


def test_a_handler_that_signals_itself_ends_as_on_lambda(server):
    url, _, _ = server
    answer, _ = invoke(url, "terminate")
    assert answer["error"]["errorType"] == "Runtime.ExitError", answer
    assert answer["error"]["errorMessage"].endswith(
        "Error: Runtime exited with error: signal: terminated"
    )
    assert invoke(url, "innocent")[0] == "fine"


def test_a_handlers_orphans_are_reaped(server):
    url, _, _ = server
    states, _ = invoke(url, "orphans")
    assert "Z" not in states.values(), states


def test_memory_size_is_enforced_and_reported(server):
    url, _, log = server
    if "memory limit by cgroup" not in log.text:
        pytest.skip("no memory cgroup here: the limit is RLIMIT_AS (MemoryError)")
    answer, tail = invoke(url, "hog")
    assert answer["error"]["errorType"] == "Runtime.OutOfMemory", answer
    assert "Runtime exited with error: signal: killed" in answer["error"]["errorMessage"]
    assert "Memory Size: 128 MB\tMax Memory Used: 128 MB" in tail
    assert invoke(url, "innocent")[0] == "fine"  # the server and other functions go on


def test_everything_an_instance_started_dies_with_it(server):
    url, _, _ = server
    answer, _ = invoke(url, "escape")
    assert answer["error"]["errorType"] == "Sandbox.Timedout"
    deadline = time.monotonic() + 5
    while marked(MARKER) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = marked(MARKER)
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_a_handler_cannot_undo_its_sandbox(server):
    url, app, _ = server
    seen, _ = invoke(url, "undo_mounts", {"state_dir": str(app / ".skylift")})
    assert all(seen[p] != 0 for p in (str(app / ".skylift"), "/proc", "/")), seen
    assert seen["remount"] != 0
    assert seen["state"] == []  # still the empty mount hiding it
    assert seen["code"] == "OSError"
    assert seen["procs"] == ["1", "2"]
    assert (app / "app.py").read_text() == textwrap.dedent(APP)


def test_leaving_the_process_group_does_not_outlive_the_instance(server):
    url, _, _ = server
    answer, _ = invoke(url, "leave")
    assert answer["error"]["errorType"] == "Sandbox.Timedout"
    deadline = time.monotonic() + 5
    while marked(MARKER) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = marked(MARKER)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_closing_or_replacing_the_standard_streams_breaks_no_later_invocation(server):
    url, _, _ = server
    assert invoke(url, "streams", {"do": "close_fds"})[0] == ["close_fds", 2]
    answer, tail = invoke(url, "streams", {"do": "log"})
    assert answer == ["log", 2] and "still logging" in tail and "still warning" in tail
    assert invoke(url, "streams", {"do": "replace"})[0] == ["replace", 2]
    answer, tail = invoke(url, "streams", {"do": "log"})
    assert "still logging" in tail and "still warning" in tail
    failed, tail = invoke(url, "streams", {"do": "close_and_fail"})
    assert failed["error"]["errorType"] == "ValueError", failed  # its own error, no crash
    assert "[ERROR] ValueError: boom" in tail
    answer, tail = invoke(url, "streams", {"do": "log"})
    assert "still warning" in tail and "Logging error" not in tail
    assert invoke(url, "streams", {"do": "none"})[0] == ["none", 2]
    answer, tail = invoke(url, "streams", {"do": "log"})
    assert answer == ["log", 2] and "still logging" in tail and "still warning" in tail


def test_sandbox_off_says_what_it_turns_off(tmp_path):
    app = write_app(tmp_path / "open")
    log = ServerLog()
    mark = uuid.uuid4().hex
    with serve(str(app), log=log, options=["--sandbox", "off"]) as url:
        seen, _ = invoke(url, "look", {"victim": 999999, "state": "/nonexistent", "mark": mark})
    os.unlink(f"/tmp/mine-{mark}")  # the host's /tmp, without the sandbox
    assert "sandbox off" in log.text and "for debugging" not in seen
    assert seen["pid"] != 1
