"""`skylift up` opens its port only when it is ready: connections are refused (not queued)
during the init phase, and the first request finds a warm instance."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

APP = """
import time
from skylift import App

time.sleep(2)  # a slow init phase

app = App()


@app.http("/hello", methods=["GET"])
def hello(event, context):
    return {"statusCode": 200, "body": "hi"}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_port_refuses_until_ready_and_the_first_request_is_warm(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", str(tmp_path), "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        refused = 0
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the server never opened its port"
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except ConnectionRefusedError:
                refused += 1
                time.sleep(0.01)
        connection.close()
        # The init phase takes 2 s: in that time the port refused, never held connections.
        assert refused > 50
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/hello").text == "hi"
        metrics = httpx.get(f"{url}/metrics").text
        assert 'skylift_cold_starts_total{function="hello"} 0.0' in metrics, metrics
    finally:
        proc.terminate()
        proc.wait(30)
