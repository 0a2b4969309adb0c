"""`skylift up` opens its port only when it is ready: connections are refused (not queued)
during the init phase, and the first request finds a warm instance."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

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


def test_a_busy_port_fails_at_once_not_after_the_init_phase(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "skylift.cli", "up", str(tmp_path), "--port", str(port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert took < 2, f"the port was tried only after the 2 s init phase ({took:.1f} s)"


SLOW = """
import time
from skylift import App

app = App()


@app.http("/slow", methods=["GET"])
def slow(event, context):
    time.sleep(1)
    return {"statusCode": 200, "body": "finished"}
"""


def test_a_stop_lets_a_request_in_flight_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(SLOW))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", str(tmp_path), "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the server never opened its port"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=30).close()
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        with httpx.Client(timeout=30) as client:
            in_flight = threading.Thread(target=lambda: answers.append(client.get(f"{url}/slow")))
            answers: list[httpx.Response] = []
            in_flight.start()
            time.sleep(0.4)  # the request is running (its handler sleeps 1 s)
            proc.terminate()
            time.sleep(0.2)
            # While the request still runs, the port takes no new connection.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            assert in_flight.is_alive()
            in_flight.join(30)
        assert [(r.status_code, r.text) for r in answers] == [(200, "finished")]
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
