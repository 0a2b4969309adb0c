"""`GET /_skylift/health`, what a container's HEALTHCHECK and Kubernetes probes ask."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from skylift.testing import serve

SLOW_INIT = """
import time
from skylift import App

time.sleep(6)  # a slow init phase: the server must not claim to be ready during it
app = App("slow")

@app.http("/hello")
def hello(event, context):
    return {"statusCode": 200, "body": "hi"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_answers_ok_once_serving_and_refuses_other_methods(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(SLOW_INIT).replace("time.sleep(6)", ""))
    with serve(str(tmp_path)) as url:
        answer = httpx.get(f"{url}/_skylift/health")
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert answer.headers["content-type"] == "application/json"
        assert httpx.post(f"{url}/_skylift/health").status_code == 405


def test_health_does_not_answer_during_the_init_phase(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(SLOW_INIT))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", "--port", str(port), str(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/_skylift/health"
    try:
        # The port is bound before the init phase (a busy port fails at once), but it
        # listens only once the server is ready: during the init phase a probe is
        # refused at once, never "ok" (nor left hanging).
        time.sleep(1.5)
        assert proc.poll() is None, "skylift up stopped"
        started = time.monotonic()
        try:
            httpx.get(url, timeout=3)
            answered = True
        except httpx.ConnectError:
            answered = False
        assert time.monotonic() - started < 1, "a probe waited instead of being refused"
        assert not answered
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(15)
