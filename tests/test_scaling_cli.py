"""`skylift status` and `skylift scale` against a real server, and the autoscaler as a
user sees it through them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from skylift.testing import serve

APP = """
import time
from skylift import App

app = App("scaling")

@app.http("/sleep", methods=["GET"])
def sleepy(event, context):
    time.sleep(float((event.get("queryStringParameters") or {}).get("s", "0.2")))
    return {"statusCode": 200, "body": "ok"}

@app.function()
def other(event, context):
    return "other"

@app.function(max_concurrency=1)
def slow(event, context):
    time.sleep(4)

@app.queue("jobs")
def job(event, context):
    return None
"""


def skylift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path


def status(app_dir: Path) -> dict:
    done = skylift("status", str(app_dir), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def load(url: str, clients: int, seconds: float, sleep: float = 0.2) -> list[int]:
    """`clients` threads each sending requests back to back for `seconds`; the statuses."""
    codes: list[int] = []
    ready = threading.Barrier(clients)
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            ready.wait()  # every client set up: they start together
            while time.monotonic() < stop:
                codes.append(http.get(f"{url}/sleep", params={"s": sleep}).status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def test_status_shows_each_function_with_its_instances_and_counters(app_dir):
    with serve(str(app_dir)):
        codes = load(serve_url(app_dir), clients=3, seconds=0.5, sleep=1.0)
        assert set(codes) == {200}
        table = skylift("status", str(app_dir))
        assert table.returncode == 0, table.stderr
        header, *rows = table.stdout.splitlines()
        assert header.split()[:5] == ["FUNCTION", "INSTANCES", "BUSY", "IDLE", "TARGET"]
        sleepy = next(r for r in rows if r.startswith("sleepy")).split()
        assert int(sleepy[1]) >= 3  # three clients at once needed three instances
        assert int(sleepy[7]) == len(codes)  # invocations
        assert int(sleepy[9]) >= 2  # cold starts: one instance was warm when the port opened
        assert any(r.startswith("other ") for r in rows)
        # What invokes each function, as `kubectl get` would list a resource's sources.
        assert "TRIGGERS" in header
        assert "GET /sleep" in next(r for r in rows if r.startswith("sleepy"))
        assert "queue:jobs" in next(r for r in rows if r.startswith("job "))
        assert "autoscaling on" in table.stdout
        assert "sandbox: " in table.stdout and "memory limit by" in table.stdout
        assert "what an instance starts ends with" in table.stdout  # and by what


def serve_url(app_dir: Path) -> str:
    return json.loads((app_dir / ".skylift" / "server.json").read_text())["url"]


def test_sustained_load_is_prewarmed_ahead_of_demand(app_dir):
    with serve(str(app_dir)):
        url = serve_url(app_dir)
        load(url, clients=6, seconds=6)
        # The target is ceil(observed / 0.7): more than the 6 ever busy at once, and the
        # instances it asks for are started without a request.
        deadline = time.monotonic() + 5
        while True:
            before = status(app_dir)["functions"]["sleepy"]
            if before["target"] > 6 and before["instances"] >= before["target"]:
                break
            assert time.monotonic() < deadline, f"not prewarmed: {before}"
            time.sleep(0.1)
        assert before["prewarmed"] >= 1
        assert before["decisions"] and "concurrent over" in before["decisions"][-1]["reason"]
        # `describe` lists the decision among the function's events, from the autoscaler.
        described = skylift("describe", "sleepy", str(app_dir))
        assert described.returncode == 0, described.stderr
        scaled = [line for line in described.stdout.splitlines() if "Scaled" in line]
        assert scaled and "autoscaler" in scaled[-1] and "concurrent over" in scaled[-1]
        # So a burst a little above the last peak starts no instance on its request path.
        load(url, clients=before["target"], seconds=0.3)
        after = status(app_dir)["functions"]["sleepy"]
        assert after["cold_starts"] == before["cold_starts"]


def test_scale_changes_limits_on_the_running_server(app_dir):
    with serve(str(app_dir)):
        url = serve_url(app_dir)
        done = skylift("scale", "sleepy", str(app_dir), "--max", "2", "--min", "1")
        assert done.returncode == 0, done.stderr
        assert "sleepy: min 1, max 2" in done.stdout
        codes = load(url, clients=6, seconds=1.5, sleep=0.3)
        assert set(codes) == {200, 429}  # past the new reserved concurrency: throttled
        entry = status(app_dir)["functions"]["sleepy"]
        assert entry["max"] == 2 and entry["reserved"] and entry["instances"] <= 2
        assert entry["throttles"] == codes.count(429)
        # Raising the minimum starts instances without any request.
        assert skylift("scale", "other", "--url", url, "--min", "3").returncode == 0
        deadline = time.monotonic() + 5
        while status(app_dir)["functions"]["other"]["instances"] < 3:
            assert time.monotonic() < deadline, "the minimum was not kept warm"
            time.sleep(0.1)


def test_scale_refuses_bad_limits_and_changes_nothing(app_dir):
    with serve(str(app_dir)):
        done = skylift("scale", "sleepy", str(app_dir), "--min", "5", "--max", "2")
        assert done.returncode == 2
        assert "minimum 5 exceeds maximum 2" in done.stderr
        done = skylift("scale", "nope", str(app_dir), "--min", "1")
        assert done.returncode == 2
        known = "(functions: job, other, sleepy, slow)"
        assert f"function 'nope' is not served here {known}" in done.stderr
        done = skylift("scale", "sleepy", str(app_dir))
        assert done.returncode == 2 and "pass --min N, --max M or both" in done.stderr
        entry = status(app_dir)["functions"]["sleepy"]
        assert (entry["min"], entry["reserved"]) == (0, False)


def test_control_api_answers_bad_requests_with_json_errors(app_dir):
    with serve(str(app_dir)):
        url = serve_url(app_dir)
        bad = httpx.put(f"{url}/_skylift/functions/sleepy/scaling", content=b"{nope")
        assert bad.status_code == 400 and "not JSON" in bad.json()["message"]
        bad = httpx.put(f"{url}/_skylift/functions/sleepy/scaling", json={"max": -1})
        assert bad.status_code == 400 and "maximum must be a whole number >= 0" in bad.text
        bad = httpx.put(f"{url}/_skylift/functions/sleepy/scaling", json={"max": True})
        assert bad.status_code == 400
        bad = httpx.put(f"{url}/_skylift/functions/sleepy/scaling", json={"size": 3})
        assert bad.status_code == 400
        bad = httpx.put(f"{url}/_skylift/functions/sleepy/scaling", json={"min": None})
        assert bad.status_code == 400
        huge = httpx.put(f"{url}/_skylift/functions/sleepy/scaling", content=b" " * 70_000)
        assert huge.status_code == 413
        assert httpx.post(f"{url}/_skylift/status").status_code == 405
        assert httpx.get(f"{url}/_skylift/elsewhere").status_code == 404


def test_status_without_a_running_server_says_how_to_start_one(app_dir):
    done = skylift("status", str(app_dir))
    assert done.returncode == 2
    assert "no skylift server is running" in done.stderr and "skylift up" in done.stderr


def test_a_stopped_server_withdraws_its_address(app_dir):
    with serve(str(app_dir)):
        assert (app_dir / ".skylift" / "server.json").exists()
    # testing.serve stops it with SIGTERM, as Kubernetes would: a clean shutdown.
    assert not (app_dir / ".skylift" / "server.json").exists()


def test_a_second_server_on_the_same_app_refuses_and_names_the_first(app_dir):
    with serve(str(app_dir)):
        first = json.loads((app_dir / ".skylift" / "server.json").read_text())
        second = skylift("up", str(app_dir), "--port", "0")
        assert second.returncode == 2
        assert f"already serving {app_dir} at {first['url']} (pid {first['pid']})" in (
            second.stderr
        )
        # The refused server left the first's address alone.
        assert json.loads((app_dir / ".skylift" / "server.json").read_text()) == first
        assert httpx.get(f"{first['url']}/_skylift/status").status_code == 200


def test_a_killed_server_does_not_block_the_next(app_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylift.cli", "up", str(app_dir), "--port", "0"],
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        address = app_dir / ".skylift" / "server.json"
        deadline = time.monotonic() + 30
        while not address.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert address.exists()
    finally:
        proc.kill()
        proc.wait()
    with serve(str(app_dir)):  # the lock went with the process; the stale file is replaced
        assert json.loads(address.read_text())["pid"] != proc.pid


def test_asynchronous_invocations_follow_a_raised_limit(app_dir):
    from skylift.client import Client

    with serve(str(app_dir)):
        url = serve_url(app_dir)
        assert skylift("scale", "slow", "--url", url, "--max", "4").returncode == 0
        client = Client(url)
        for _ in range(4):
            client.invoke_async("slow", b"{}")
        # Declared with max_concurrency=1, but scaled to 4: all four run at once.
        deadline = time.monotonic() + 3.5
        while client.status()["functions"]["slow"]["busy"] < 4:
            assert time.monotonic() < deadline, "the async runner kept the declared limit"
            time.sleep(0.05)


def test_a_raised_limit_reaches_async_events_already_waiting(app_dir):
    from skylift.client import Client

    with serve(str(app_dir)):
        client = Client(serve_url(app_dir))
        for _ in range(3):
            client.invoke_async("slow", b"{}")
        time.sleep(0.5)  # one runs (max_concurrency=1); two wait for room
        assert client.status()["functions"]["slow"]["busy"] == 1
        client.scale("slow", None, 3)
        deadline = time.monotonic() + 2.5  # well before the running one (4 s) ends
        while client.status()["functions"]["slow"]["busy"] < 3:
            assert time.monotonic() < deadline, "waiting events did not see the new limit"
            time.sleep(0.05)


def test_scaling_past_the_server_s_concurrency_is_refused(app_dir):
    with serve(str(app_dir), options=["--concurrency", "50"]):
        done = skylift("scale", "sleepy", str(app_dir), "--min", "60", "--max", "60")
        assert done.returncode == 2
        assert "exceeds the server's concurrency limit 50" in done.stderr
        assert "--concurrency" in done.stderr
        entry = status(app_dir)["functions"]["sleepy"]
        # One instance: the one warm since the port opened.
        assert entry["max"] == 50 and not entry["reserved"] and entry["instances"] == 1


def test_max_zero_turns_a_function_off_and_its_queue_waits(app_dir):
    from skylift.client import Client

    with serve(str(app_dir)):
        url = serve_url(app_dir)
        client = Client(url)
        for name in ("sleepy", "job"):
            assert skylift("scale", name, "--url", url, "--max", "0").returncode == 0
        assert httpx.get(f"{url}/sleep").status_code == 429  # refused: nothing to wait for
        assert client.status()["functions"]["sleepy"]["invocations"] == 0  # it never ran
        queue = client.queue_url("jobs")
        client.sqs("SendMessage", {"QueueUrl": queue, "MessageBody": "later"})
        time.sleep(1.5)
        assert client.status()["functions"]["job"]["invocations"] == 0
        depth = client.sqs(
            "GetQueueAttributes",
            {"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages"]},
        )
        assert depth["Attributes"]["ApproximateNumberOfMessages"] == "1"  # waiting, visible
        # Turned back on: the message is handled, not lost.
        assert skylift("scale", "job", "--url", url, "--max", "2").returncode == 0
        deadline = time.monotonic() + 5
        while client.status()["functions"]["job"]["invocations"] < 1:
            assert time.monotonic() < deadline, "the queue did not resume"
            time.sleep(0.1)
