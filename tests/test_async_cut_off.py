"""An asynchronous event whose run a server crash cut off runs again as soon as the
server is back (as Lambda retries an event cut off by a system error within seconds), not
after a visibility timeout of twice the function's timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3

APP = """
import os
import time
from skylift import App

app = App()
HERE = os.path.dirname(os.path.abspath(__file__))


@app.function(timeout=300)
def slow(event, context):
    with open(os.path.join(HERE, "runs.txt"), "a") as f:
        f.write(context.aws_request_id + "\\n")
    if os.path.exists(os.path.join(HERE, "hang")):
        # Long enough to be cut off by the kill; short, since the worker (its own
        # process group, with no PID namespace under --sandbox off) outlives the killed
        # server and zygote until its handler returns.
        time.sleep(30)
"""


def start(app: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen(
        # --sandbox off: the handler records its runs in a file beside its code.
        [
            sys.executable,
            "-m",
            "skylift.cli",
            "up",
            str(app),
            "--port",
            "0",
            "--quiet",
            "--sandbox",
            "off",
        ],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    before: list[str] = []
    for line in proc.stderr:
        before.append(line)
        if "serving on" in line:
            return proc, line.split("serving on ")[1].strip(), before
    raise AssertionError(f"skylift up did not start: {''.join(before)}")


def runs(app: Path) -> list[str]:
    path = app / "runs.txt"
    return path.read_text().split() if path.exists() else []


def wait_for(condition, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_an_event_cut_off_by_a_crash_runs_again_when_the_server_is_back(tmp_path: Path):
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "hang").touch()
    proc, url, _ = start(tmp_path)
    try:
        client = boto3.client(
            "lambda",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        accepted = client.invoke(FunctionName="slow", InvocationType="Event", Payload=b"{}")
        request_id = accepted["ResponseMetadata"]["RequestId"]
        assert wait_for(lambda: runs(tmp_path), 30), "the event never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the server, its zygote, the running worker
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert runs(tmp_path) == [request_id]

    (tmp_path / "hang").unlink()
    proc, _, banner = start(tmp_path)
    try:
        # The function's timeout is 300 s: a visibility timeout would hold it for minutes.
        assert wait_for(lambda: len(runs(tmp_path)) == 2, 20), "the event did not run again"
        assert runs(tmp_path) == [request_id, request_id]
        assert any("1 asynchronous event cut off" in line for line in banner), banner
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        assert proc.stderr is not None
        proc.stderr.close()
