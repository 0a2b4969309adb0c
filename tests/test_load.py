"""`skylift load`: Locust against a real server, the knee, the JSON, the chart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from skylift.cli.load import seconds, user_steps
from skylift.load.steps import Step, change, holds, knee, measure, percentile
from skylift.testing import serve

# 20 ms a request, one instance at most: every user past the first queues behind it,
# so p95 grows with users and the knee is the first step, on any machine.
SLOW_APP = """
import time
from skylift import App

app = App("slow")

@app.http("/slow", methods=["POST"], max_concurrency=1)
def slow(event, context):
    time.sleep(0.02)
    return {"statusCode": 200, "body": event["body"]}

@app.function()
def echo(event, context):  # no route: reached through the Lambda Invoke API
    if event.get("fail"):
        raise ValueError("asked to")
    return event
"""


@pytest.fixture(scope="module")
def slow_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("slow")
    (folder / "app.py").write_text(SLOW_APP)
    with serve(str(folder), options=["--quiet"]) as url:
        yield url, folder


def load(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", "load", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_a_short_load_finds_the_knee_and_writes_json_and_chart(
    slow_app: tuple[str, Path], tmp_path: Path
) -> None:
    url, folder = slow_app
    args = ["POST", "/slow", "--url", url, "--users", "1..5", "--step", "5"]
    args += ["--step-time", "1s", "--body", '{"n": 1}', "--save", "run.json"]
    run = load(*args, "--chart", "run.png", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    saved = json.loads((tmp_path / "run.json").read_text())
    assert [s["users"] for s in saved["steps"]] == [1, 5]
    one, five = saved["steps"]
    assert one["requests"] > 10 and one["failures"] == 0
    assert 20 <= one["p50"] <= one["p95"] <= one["p99"]
    assert not holds(Step(**five), one["p95"])  # queued behind the one instance
    assert saved["knee"] == one
    assert saved["ramp_completed"] is False
    assert f"knee: 1 user, {one['rps']:.1f} rps" in run.stdout
    assert "is over twice the unloaded" in run.stdout
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # found this time through the .skylift/server.json of the app's running server
    args[2:4] = ["--app", str(folder)]
    again = load(*args[:-2], "--save", "again.json", "--baseline", "run.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rps = json.loads((tmp_path / "again.json").read_text())["knee"]["rps"]
    gain = change(rps, one["rps"])
    assert f"knee rps: {one['rps']:.1f} -> {rps:.1f} ({gain:+.1%} against run.json)" in again.stdout


def test_only_this_machine_is_loaded(tmp_path: Path) -> None:
    run = load("http://192.0.2.1/predict", cwd=tmp_path)
    assert run.returncode == 2
    assert "only loads servers on this machine" in run.stderr


def test_no_server_is_a_clear_error(tmp_path: Path) -> None:
    run = load("GET", "/predict", cwd=tmp_path)
    assert run.returncode == 2
    assert "no skylift server is running" in run.stderr
    refused = load("http://127.0.0.1:9/x", cwd=tmp_path)
    assert refused.returncode == 2
    assert "no server answers at http://127.0.0.1:9/x" in refused.stderr


def test_a_baseline_that_is_not_a_saved_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text('{"hello": 1}')
    run = load("http://127.0.0.1:9/x", "--baseline", "old.json", cwd=tmp_path)
    assert run.returncode == 2
    assert "not a `skylift load --save` file" in run.stderr


def test_user_steps_and_durations() -> None:
    assert user_steps("1..50", 5) == [1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert user_steps("20", 8) == [1, 8, 16, 20]
    assert user_steps("3..3", 5) == [3]
    assert seconds("10s") == 10 and seconds("500ms") == 0.5 and seconds("1m") == 60
    for bad in ("0..5", "5..2", "lots"):
        with pytest.raises(click.BadParameter):
            user_steps(bad, 5)
    with pytest.raises(click.BadParameter):
        seconds("soon")


def step(users: int, p95: float, failures: int = 0) -> Step:
    return Step(users, 1000, failures, 1.0, 1000.0, p95 / 2, p95, p95 * 2)


def test_the_knee_is_the_last_step_before_latency_doubles_or_errors_pass_1_percent() -> None:
    assert knee([step(1, 10), step(5, 19), step(10, 21)]) == step(5, 19)
    assert knee([step(1, 10), step(5, 12, failures=11), step(10, 12)]) == step(1, 10)
    assert knee([step(1, 10), step(5, 12, failures=10)]) == step(5, 12, failures=10)  # 1%
    assert knee([step(1, 10, failures=500)]) is None
    assert knee([step(1, 10), step(5, 25), step(10, 11)]) == step(1, 10)  # no coming back


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.95) == 95
    assert percentile([], 0.95) == 0.0
    measured = measure(3, [3.0, 1.0, 2.0], failures=1, seconds=2.0)
    assert (measured.requests, measured.rps, measured.p50, measured.p99) == (3, 1.5, 2.0, 3.0)
    assert re.fullmatch(r"0\.33+", str(round(measured.error_ratio, 4)))


def short(*target: str) -> list[str]:
    return [*target, "--users", "1", "--step-time", "0.5s", "--save", "run.json"]


def test_a_function_is_loaded_by_name_through_its_route_or_the_invoke_api(
    slow_app: tuple[str, Path], tmp_path: Path
) -> None:
    _, folder = slow_app
    routed = load(*short("slow"), "--app", str(folder), "--body", '{"n": 1}', cwd=tmp_path)
    assert routed.returncode == 0, routed.stderr
    assert "loading slow's route POST /slow" in routed.stderr
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["target"].endswith("/slow") and saved["steps"][0]["failures"] == 0

    invoked = load(*short("echo"), "--app", str(folder), cwd=tmp_path)
    assert invoked.returncode == 0, invoked.stderr
    assert "echo through the Lambda Invoke API" in invoked.stderr
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["target"].endswith("/2015-03-31/functions/echo/invocations")
    first = saved["steps"][0]
    assert first["requests"] > 5 and first["failures"] == 0

    # A function error is a 200 from the Invoke API, and a failure here.
    failing = load(*short("echo"), "--app", str(folder), "--body", '{"fail": 1}', cwd=tmp_path)
    assert failing.returncode == 0, failing.stderr
    first = json.loads((tmp_path / "run.json").read_text())["steps"][0]
    assert first["failures"] == first["requests"] > 0

    unknown = load(*short("nope"), "--app", str(folder), cwd=tmp_path)
    assert unknown.returncode == 2
    assert "'nope' is not a function this server serves (functions: echo, slow)" in unknown.stderr
    wrong = load(*short("echo"), "--app", str(folder), "--method", "GET", cwd=tmp_path)
    assert wrong.returncode == 2 and "which takes POST" in wrong.stderr


def test_a_function_of_a_server_with_a_token_is_loaded_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "guarded"
    folder.mkdir()
    (folder / "app.py").write_text(SLOW_APP)
    monkeypatch.setenv("SKYLIFT_TOKEN", "load-test-token-1")
    with serve(str(folder), options=["--quiet"]):
        monkeypatch.delenv("SKYLIFT_TOKEN")  # the client finds it in .skylift/server.json
        run = load(*short("echo"), "--app", str(folder), cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        first = json.loads((tmp_path / "run.json").read_text())["steps"][0]
        assert first["requests"] > 5 and first["failures"] == 0  # no 403 among them
