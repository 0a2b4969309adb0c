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


def up(folder: Path, source: str) -> tuple[subprocess.Popen[bytes], int]:
    """`skylift up` of the app `source`, written to `folder`, on a free port."""
    (folder / "app.py").write_text(textwrap.dedent(source))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", str(folder), "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def test_the_port_refuses_until_ready_and_the_first_request_is_warm(tmp_path: Path) -> None:
    proc, port = up(tmp_path, APP)
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
    # An init phase of 30 s: a server that tried the port only after it would take that.
    (tmp_path / "app.py").write_text(textwrap.dedent(APP).replace("sleep(2)", "sleep(30)"))
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
    assert took < 15, f"the port was tried only after the 30 s init phase ({took:.1f} s)"


GATED = """
import socket
from skylift import App

app = App()


@app.http("/gated", methods=["GET"])
def gated(event, context):
    # Runs until the test sends a byte to the port in `?gate=`.
    port = int(event["queryStringParameters"]["gate"])
    with socket.create_connection(("127.0.0.1", port)) as gate:
        gate.recv(1)
    return {"statusCode": 200, "body": "finished"}
"""


def test_a_stop_lets_a_request_in_flight_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    proc, port = up(tmp_path, GATED)
    gate = socket.create_server(("127.0.0.1", 0))
    gate.settimeout(30)
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
        answers: list[httpx.Response] = []
        with httpx.Client(timeout=30) as client:
            gated = f"{url}/gated?gate={gate.getsockname()[1]}"
            in_flight = threading.Thread(target=lambda: answers.append(client.get(gated)))
            in_flight.start()
            handler, _ = gate.accept()  # the request is running in its handler
            with handler:
                proc.terminate()
                # While it runs, the port stops taking connections (the server waits up to
                # 2 s for requests in flight).
                refused = False
                until = time.monotonic() + 1.5
                while not refused and time.monotonic() < until:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        time.sleep(0.02)
                    except ConnectionRefusedError:
                        refused = True
                assert refused, "the port still took connections while stopping"
                assert in_flight.is_alive()
                handler.sendall(b"x")  # let it finish
            in_flight.join(30)
        assert [(r.status_code, r.text) for r in answers] == [(200, "finished")]
        assert proc.wait(30) == 0
    finally:
        gate.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
