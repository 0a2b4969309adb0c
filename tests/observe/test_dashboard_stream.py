"""The dashboard's routes without a browser: its event stream ends when the client leaves
and when the server stops, the guard covers it as it covers the control API, and bad
requests say what is wrong."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from observe_support import eventually

from skylift.observe import logs_frame, logs_layout
from skylift.observe.log_filter import Filter
from skylift.observe.logs_read import Query, Reader
from skylift.testing import serve

HERE = Path(__file__).parent
TOKEN = "dashboard-test-token-0123456789"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    shutil.copy(HERE / "dashboard_app.py", tmp_path / "app.py")
    return tmp_path


def first_event(lines: Iterator[str]) -> tuple[str, object]:
    """The stream's next event (name, data). (One iterator per response: dropping an
    httpx line iterator closes its response.)"""
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            return name, orjson.loads(line[len("data: ") :])
    raise AssertionError("the stream ended before its first event")


def viewers(url: str) -> int:
    return int(httpx.get(url + "/_skylift/dashboard/state", timeout=30).json()["viewers"])


def test_a_closed_stream_ends_its_task(app: Path) -> None:
    with serve(str(app), options=["--quiet"]) as url, httpx.Client(timeout=30) as client:
        streams = []
        for _ in range(2):
            request = client.build_request("GET", url + "/_skylift/dashboard/events")
            response = client.send(request, stream=True)
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            name, data = first_event(lines)
            assert name == "snapshot" and isinstance(data, dict)
            assert {f["name"] for f in data["functions"]} == {"pay", "flaky", "single"}
            streams.append((response, lines))
        assert viewers(url) == 2
        # A closed tab: the connection goes, and the server stops streaming to it.
        streams.pop()[0].close()
        eventually(lambda: viewers(url) == 1, 10)
        # The other still streams: its next event comes, with the new count.
        response, lines = streams.pop()
        assert first_event(lines)[0] in ("snapshot", "logs")
        response.close()
        eventually(lambda: viewers(url) == 0, 10)
        # Counted as the dashboard's, not as the control API's (whose durations they'd skew).
        scraped = httpx.get(url + "/metrics", timeout=30).text
        assert 'skylift_http_requests_total{code="200",method="GET",route="aws:dashboard"}' in (
            scraped
        )
        assert 'route="aws:control"' not in scraped


def test_shutdown_ends_open_streams_cleanly(app: Path) -> None:
    drain: threading.Thread | None = None
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", "--port", "0", "--quiet", str(app)],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = ""
        for line in proc.stderr:
            found = re.search(r"serving on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "skylift up did not start"
        drain = threading.Thread(target=proc.stderr.read, daemon=True)  # keep the pipe clear
        drain.start()
        with httpx.stream("GET", url + "/_skylift/dashboard/events", timeout=30) as response:
            lines = response.iter_lines()
            first_event(lines)
            os.kill(proc.pid, signal.SIGTERM)
            # The server ends the response itself: no cut-off chunk (RemoteProtocolError).
            for _ in lines:
                pass
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if drain is not None:
            drain.join(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_the_guard_covers_the_dashboard_and_bad_requests_say_why(
    app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYLIFT_TOKEN", TOKEN)
    with serve(str(app), options=["--quiet"]) as url:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        # The page and its assets hold no data: a browser loads them before the token.
        page = httpx.get(url + "/_skylift/", timeout=30)
        assert page.status_code == 200 and "<title>skylift dashboard</title>" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        script = httpx.get(url + "/_skylift/static/dashboard.js", timeout=30)
        assert script.status_code == 200 and "text/javascript" in script.headers["content-type"]
        # Its data needs the token, as the control API does.
        for path in ("state", "events", "logs"):
            refused = httpx.get(f"{url}/_skylift/dashboard/{path}", timeout=30)
            assert refused.status_code == 403, path
            assert refused.json()["__type"] == "AccessDeniedException"
        state = httpx.get(url + "/_skylift/dashboard/state", headers=bearer, timeout=30)
        assert state.status_code == 200 and state.json()["alerts"] == []
        assert not (app / ".skylift" / "alerts.db").exists()  # no policy: no alerts database
        # Another site's page cannot read it, even with the token; nor a rebound name.
        other = httpx.get(
            url + "/_skylift/dashboard/state",
            headers={**bearer, "Origin": "https://evil.example"},
            timeout=30,
        )
        assert other.status_code == 403
        rebound = httpx.get(url + "/_skylift/", headers={"Host": "evil.example"}, timeout=30)
        assert rebound.status_code == 421
        # Bad requests: what was wrong, and nothing else happens.
        bad = httpx.get(
            url + "/_skylift/dashboard/logs", params={"filter": '"open'}, headers=bearer
        )
        assert bad.status_code == 400 and "unclosed quote" in bad.json()["message"]
        bad = httpx.get(
            url + "/_skylift/dashboard/events", params={"function": "../x"}, headers=bearer
        )
        assert bad.status_code == 400 and "not a function name" in bad.json()["message"]
        assert httpx.post(url + "/_skylift/", headers=bearer).status_code == 405
        missing = httpx.get(url + "/_skylift/static/evil.js", headers=bearer)
        assert missing.status_code == 404
        nowhere = httpx.get(url + "/_skylift/dashboard/nope", headers=bearer)
        assert nowhere.status_code == 404 and "dashboard/state" in nowhere.json()["message"]
        # The rest of the control API is as it was.
        assert httpx.get(url + "/_skylift/status", headers=bearer).status_code == 200


def test_logs_start_at_the_latest_lines(app: Path) -> None:
    with serve(str(app), options=["--quiet"]) as url:
        ids = []
        for amount in range(1, 6):
            answer = httpx.post(
                f"{url}/2015-03-31/functions/pay/invocations", json={"amount": amount}
            )
            ids.append(answer.headers["x-amzn-requestid"])
        lines = eventually(
            lambda: (
                (
                    found := httpx.get(
                        url + "/_skylift/dashboard/logs", params={"filter": "paying"}
                    ).json()["lines"]
                )
                and len(found) == 5
                and found
            ),
            10,
        )
        assert [line["message"].strip() for line in lines] == [f"paying {n}" for n in range(1, 6)]
        assert [line["requestId"] for line in lines] == ids
        # A viewer's first read is the files' tail: from the start of the frame holding
        # its first byte (frames are whole or not read), never from inside one. How many
        # invocations each frame holds depends on when the batches were handed over.
        (_, path), *_ = logs_layout.log_files(logs_layout.root(app / ".skylift"), "pay")
        data = path.read_bytes()
        frames = [(begin, len(rows)) for begin, _, _, rows in logs_frame.split(data)]
        assert sum(count for _, count in frames) == 5 and frames[0][0] == 0
        everything = [f"paying {n}" for n in range(1, 6)]
        last, in_last = frames[-1]
        cases = [(1, in_last), (len(data) - last, in_last), (len(data), 5)]  # its last byte...
        if len(frames) > 1:  # ... and the one before's last byte too
            cases.append((len(data) - last + 1, frames[-2][1] + in_last))
        for keep, expected in cases:
            reader = Reader(path.parent.parent, Query(function="pay", filter=Filter(("paying",))))
            reader.tail(keep)
            found = [e.message.strip() for e in reader.poll()]
            assert found == everything[5 - expected :], keep
