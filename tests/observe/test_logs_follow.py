"""`skylift logs --url -f` when the server fails for a while (a 5xx, a connection
reset while it restarts): it says so once and goes on; a refusal still ends it. And
`--since` out of range is said, not a traceback."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from observe_support import HERE, skylift

from skylift.cli import logs as logs_cli
from skylift.client import Client, ClientError


def event(message: str) -> dict[str, object]:
    return {
        "logGroupName": "/aws/lambda/hello",
        "logStreamName": "2026/01/01/[$LATEST]" + "0" * 32,
        "timestamp": 1_800_000_000_000,
        "message": message,
        "ingestionTime": 1_800_000_000_000,
        "eventId": message,
    }


# What the server answers, in turn: (status, body); None resets the connection.
SCRIPT: list[tuple[int, bytes] | None] = [
    (200, json.dumps({"events": [], "nextForwardToken": "t1", "nextToken": "t1"}).encode()),
    (200, json.dumps({"events": [event("first")], "nextForwardToken": "t2"}).encode()),
    (500, b"Internal Server Error"),
    None,
    (502, b"<html>Bad Gateway</html>"),
    (200, json.dumps({"events": [event("second")], "nextForwardToken": "t3"}).encode()),
    (400, json.dumps({"message": "next_token is not a token this server gave"}).encode()),
]


@pytest.fixture
def scripted() -> Iterator[tuple[str, list[dict[str, object]]]]:
    asked: list[dict[str, object]] = []
    script = list(SCRIPT)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            asked.append(json.loads(body))
            turn = script.pop(0) if script else (404, b"{}")
            if turn is None:
                self.close_connection = True
                self.connection.close()
                return
            status, answer = turn
            self.send_response(status)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_follower_rides_out_server_errors_and_stops_at_a_refusal(
    scripted: tuple[str, list[dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, asked = scripted
    monkeypatch.setattr(logs_cli, "POLL", 0.01)
    monkeypatch.setattr(logs_cli, "RETRY_MOST", 0.05, raising=False)
    done = CliRunner().invoke(logs_cli.logs, ["hello", "--url", url, "-f"])
    assert done.stdout.splitlines() == [
        "2027-01-15T08:00:00.000+00:00 2026/01/01/[$LATEST]" + "0" * 32 + " first",
        "2027-01-15T08:00:00.000+00:00 2026/01/01/[$LATEST]" + "0" * 32 + " second",
    ]
    assert done.stderr.count("retrying") == 1, done.stderr  # said once, not each time
    assert "HTTP 500" in done.stderr and "not a skylift server" not in done.stderr
    assert done.exit_code == 2 and "not a token this server gave" in done.stderr
    assert [a.get("next_token") for a in asked] == [None, "t1", "t2", "t2", "t2", "t2", "t3"]


def test_a_server_error_is_called_one(scripted: tuple[str, list[dict[str, object]]]) -> None:
    url, _ = scripted
    client = Client(url)
    client.logs()
    client.logs()
    with pytest.raises(ClientError) as failed:
        client.logs()
    assert failed.value.status == 500
    assert str(failed.value) == (
        f"the server at {url} failed: HTTP 500 to its control API (Internal Server Error)"
    )


@pytest.mark.parametrize("since", ["²", "9" * 400 + "w", "9" * 30])
def test_since_out_of_range_is_said_not_a_traceback(tmp_path: Path, since: str) -> None:
    shutil.copy(HERE / "observed_app.py", tmp_path / "app.py")
    done = skylift("logs", "--since", since, str(tmp_path))
    assert done.returncode == 2 and not done.stdout
    assert "--since" in done.stderr and "Traceback" not in done.stderr, done.stderr
