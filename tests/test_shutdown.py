"""Stopping `skylift up` with invocations in flight (by the Invoke API, a queue, an HTTP
route): one line names each cancelled invocation, and no traceback from the server, its
zygote or its HTTP front reaches the terminal."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

APP = """
import os
import time
from skylift import App

app = App()
HERE = os.path.dirname(os.path.abspath(__file__))


@app.function(timeout=120)
def sleepy(event, context):
    open(os.path.join(HERE, "started-" + context.aws_request_id), "w").close()
    time.sleep(120)
    return "done"


@app.queue("work", batch_size=1)
def worker(event, context):
    sleepy(event, context)


@app.http("/sleep", methods=["GET"], timeout=120)
def web(event, context):
    sleepy(event, context)
"""


def invoke(url: str) -> None:
    if url.endswith("/sleep"):  # an HTTP route's request, answered with no task
        request = urllib.request.Request(url)
    else:
        request = urllib.request.Request(
            f"{url}/2015-03-31/functions/sleepy/invocations", data=b"{}", method="POST"
        )
    try:
        urllib.request.urlopen(request, timeout=60).close()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        pass  # the server stopped under it: what the client sees is not this test's point


@pytest.mark.parametrize("stop", ["SIGTERM", "Ctrl-C"])
def test_a_shutdown_names_what_it_cancelled_and_prints_no_traceback(tmp_path: Path, stop: str):
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    server = subprocess.Popen(
        # --sandbox off: the handler marks its start in a file beside its code.
        [
            sys.executable,
            "-m",
            "skylift.cli",
            "up",
            str(tmp_path),
            "--port",
            "0",
            "--sandbox",
            "off",
        ],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        assert server.stderr is not None
        url = ""
        for line in server.stderr:
            if "serving on" in line:
                url = line.split("serving on ")[1].strip()
                break
        assert url, "skylift up did not start"
        callers = [
            threading.Thread(target=invoke, args=(target,), daemon=True)
            for target in (url, url, url + "/sleep")
        ]
        for caller in callers:
            caller.start()
        sent = subprocess.run(
            [sys.executable, "-m", "skylift.cli", "send", "work", "{}", str(tmp_path)],
            capture_output=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("started-*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = sorted(p.name.removeprefix("started-") for p in tmp_path.glob("started-*"))
        assert len(started) == 4, "all invocations must be running when the server stops"

        if stop == "SIGTERM":
            server.send_signal(signal.SIGTERM)
        else:  # a terminal sends SIGINT to the whole foreground process group
            os.killpg(server.pid, signal.SIGINT)
        rest = server.stderr.read()
        server.wait(30)
        server.stderr.close()

    finally:
        if server.poll() is None:  # a failed step above must not leave a server behind
            server.kill()
            server.wait(10)
    assert server.returncode == 0, rest
    assert "Traceback" not in rest and "ERROR" not in rest, rest
    cancelled = [line for line in rest.splitlines() if line.startswith("skylift: cancelled")]
    assert sorted(line.split("RequestId: ")[1].split()[0] for line in cancelled) == started
    functions = sorted(line.split()[2] for line in cancelled)
    # The queue's poller stopped in order; the HTTP route's request had no task to cancel.
    assert functions == ["sleepy", "sleepy", "web", "worker"]
    after_banner = [line for line in rest.splitlines() if not line.startswith("  ")]
    assert after_banner == cancelled, "nothing but the cancellations"


NAPS = """
import time
from skylift import App

app = App()


@app.function(timeout=120)
def nap(event, context):
    time.sleep(event["seconds"])
    return "done"
"""


def _running(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return process.status() != psutil.STATUS_ZOMBIE
    return False


def test_a_killed_server_leaves_none_of_its_instances_running(tmp_path: Path):
    """kill -9 of `skylift up` (as by the OOM killer): its zygote ends every instance, idle
    or busy, and with each its PID namespace, within a second. Its PID 1 waits for the
    instance to be reaped; the zygote does that itself rather than leave it to the host's
    PID 1 (which here took 1.4-2 s, and in a container may never do it)."""
    (tmp_path / "app.py").write_text(NAPS)
    command = [sys.executable, "-m", "skylift.cli", "up", str(tmp_path), "--port", "0"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert server.stderr is not None
        url = sandbox = ""
        for line in server.stderr:
            if "serving on" in line:
                url = line.split("serving on ")[1].strip()
            if "sandbox:" in line:
                sandbox = line
                break
        assert url, "skylift up did not start"
        if "own PID" not in sandbox:
            pytest.skip(f"no PID namespaces here: {sandbox.strip()}")
        target = f"{url}/2015-03-31/functions/nap/invocations"

        def nap(seconds: float) -> None:
            request = urllib.request.Request(target, data=b'{"seconds": %f}' % seconds)
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                urllib.request.urlopen(request, timeout=60).close()

        warm = [threading.Thread(target=nap, args=(0.5,)) for _ in range(3)]
        for caller in warm:
            caller.start()
        for caller in warm:
            caller.join()
        threading.Thread(target=nap, args=(60,), daemon=True).start()  # busy when killed
        time.sleep(1)
        family = psutil.Process(server.pid).children(recursive=True)
        inits = [p for p in family if p.name() == "skylift-ns-init"]
        assert len(inits) >= 3, "the instances' PID 1s (two idle, one busy) and their maker"
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 1
        while any(map(_running, family)) and time.monotonic() < deadline:
            time.sleep(0.02)
        left = [f"{p.pid} {p.name()}" for p in family if _running(p)]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        server.stderr.close()
    for process in family:  # never leave one behind, even when the test fails
        with contextlib.suppress(psutil.Error):
            process.kill()
    assert left == [], "processes of the killed server still running 1 s after"
