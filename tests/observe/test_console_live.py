"""The terminal of `skylift up`: output as it is printed, and CloudWatch's failure lines,
every line prefixed with its function's name."""

from __future__ import annotations

import re
import textwrap
import threading
import time
from pathlib import Path

import httpx

from skylift.testing import ServerLog, serve

APP = """
import os, time
from skylift import App

app = App()


@app.http("/slow")
def slow(event, context):
    print("step 1", flush=False)
    time.sleep(2)
    print("step 2")
    return {"statusCode": 200, "body": "done"}


@app.http("/stuck", timeout=1)
def stuck(event, context):
    print("before the wait")
    time.sleep(10)


@app.http("/crash")
def crash(event, context):
    print("going down")
    os._exit(3)
"""


def wait_for(log: ServerLog, pattern: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if re.search(pattern, log.text, re.M):
            return True
        time.sleep(0.02)
    return False


def test_output_reaches_the_terminal_while_the_function_runs(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    log = ServerLog()
    with serve(str(tmp_path), log=log) as url:
        answer: list[httpx.Response] = []
        call = threading.Thread(target=lambda: answer.append(httpx.get(f"{url}/slow", timeout=30)))
        call.start()
        try:
            # Printed before the 2-second sleep: shown long before the function returns.
            assert wait_for(log, r"^\[slow\] step 1$", 1.5), log.text
            assert not answer, "the line came only with the answer"
            assert re.search(r"^\[slow\] START RequestId: \S+ Version: \$LATEST$", log.text, re.M)
        finally:
            call.join(30)
        assert answer and answer[0].text == "done"
        assert wait_for(log, r"^\[slow\] REPORT RequestId: ", 5), log.text
        block = [line for line in log.text.splitlines() if line.startswith("[slow] ")]
        # Each line once, in Lambda's order, every one with the prefix.
        assert [line.split(" ", 2)[1] for line in block] == [
            "START",
            "step",
            "step",
            "END",
            "REPORT",
        ], block
        assert block[1:3] == ["[slow] step 1", "[slow] step 2"]


def test_a_timeout_and_a_crash_print_cloudwatchs_lines(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    log = ServerLog()
    with serve(str(tmp_path), log=log) as url:
        assert httpx.get(f"{url}/stuck", timeout=30).status_code >= 500
        assert httpx.get(f"{url}/crash", timeout=30).status_code >= 500
        assert wait_for(log, r"^\[crash\] REPORT ", 5), log.text
    timed_out = (
        r"^\[stuck\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ Task timed out after 1\.00 seconds$"
    )
    assert re.search(timed_out, log.text, re.M), log.text
    assert re.search(r"^\[stuck\] before the wait$", log.text, re.M)
    exited = r"^\[crash\] RequestId: \S+ Error: Runtime exited with error: exit status 3$"
    assert re.search(exited, log.text, re.M), log.text
    assert re.search(r"^\[crash\] going down$", log.text, re.M)


QUICK = """
from skylift import App

app = App()


@app.http("/quick")
def quick(event, context):
    return {"statusCode": 200, "body": "ok"}
"""


def test_without_stored_logs_the_terminal_shows_every_invocation(tmp_path: Path) -> None:
    # Under load the terminal shows 50 invocations of a function a second and counts the
    # rest, which are in `skylift logs`; with nothing stored it must leave none out.
    (tmp_path / "app.py").write_text(textwrap.dedent(QUICK))
    log = ServerLog()
    with serve(str(tmp_path), log=log, options=["--no-observe"]) as url:
        with httpx.Client(timeout=30) as client:
            for _ in range(160):  # in 3 seconds at most, a bound would have left some out
                assert client.get(f"{url}/quick").text == "ok"
        pattern = r"^\[quick\] REPORT RequestId: "
        deadline = time.monotonic() + 10
        while len(re.findall(pattern, log.text, re.M)) < 160 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(re.findall(pattern, log.text, re.M)) == 160
        assert "more invocations" not in log.text
