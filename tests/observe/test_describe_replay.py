"""`skylift describe`, `status` and `replay` against a real `skylift up`."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from observe_support import HERE, eventually, skylift

from skylift.testing import ServerLog, serve

FIXED = "raise ValueError(f\"cannot add {event['numbers']} yet\")"


LOG = ServerLog()


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    app = tmp_path_factory.mktemp("described")
    shutil.copy(HERE / "described_app.py", app / "app.py")
    with serve(str(app), options=["--quiet"], log=LOG) as url:
        yield url, app


def invoke(lambda_client: Callable[[str], Any], url: str, function: str, event: Any) -> Any:
    """(request id, payload, function error) of one Invoke API call, through boto3."""
    answer = lambda_client(url).invoke(FunctionName=function, Payload=json.dumps(event).encode())
    return (
        answer["ResponseMetadata"]["RequestId"],
        json.loads(answer["Payload"].read()),
        answer.get("FunctionError"),
    )


def events(app: Path, function: str) -> list[list[str]]:
    """The rows of describe's Events table: [type, reason, the rest]."""
    done = skylift("describe", function, str(app))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if "Events:  <none>" in lines:
        return []
    start = lines.index("Events:")
    assert lines[start + 1].split() == ["Type", "Reason", "Age", "From", "Message"]
    return [line.split(None, 2) for line in lines[start + 3 :]]


def stored(app: Path, function: str, request_id: str) -> None:
    """Wait until the invocation's log (and with it its event) is written."""
    eventually(
        lambda: "REPORT" in skylift("logs", function, str(app), "--request-id", request_id).stdout
    )


def test_describe_lists_a_cold_start_a_timeout_and_a_crash_in_order(
    described: tuple[str, Path], lambda_client: Callable[[str], Any]
) -> None:
    url, app = described
    invoke(lambda_client, url, "troubled", {})
    timed_out, payload, _ = invoke(lambda_client, url, "troubled", {"sleep": 3})
    assert payload["errorType"] == "Sandbox.Timedout"
    crashed, payload, _ = invoke(lambda_client, url, "troubled", {"exit": 3})
    assert payload["errorType"] == "Runtime.ExitError"

    # (Scaling decisions may come after the crash: it need not be the newest.)
    rows = eventually(
        lambda: (r := events(app, "troubled")) and any(x[1] == "Crashed" for x in r) and r
    )
    reasons = [row[1] for row in rows]
    assert {"ColdStart", "Timeout", "Crashed"} <= set(reasons), rows
    assert reasons.index("ColdStart") < reasons.index("Timeout") < reasons.index("Crashed")
    by_reason = {row[1]: row for row in rows}
    assert by_reason["ColdStart"][0] == "Normal"
    assert by_reason["Timeout"][0] == by_reason["Crashed"][0] == "Warning"
    # The seconds it ran: 1.00, or a little more on a loaded machine.
    timeout_line = rf"Task timed out after 1\.\d\d seconds \(request {timed_out}\)"
    assert re.search(timeout_line, by_reason["Timeout"][2]), by_reason["Timeout"]
    assert f"exit status 3 (request {crashed})" in by_reason["Crashed"][2]
    described_text = skylift("describe", "troubled", str(app)).stdout
    assert re.search(r"^Timeout:\s+1 s$", described_text, re.M)
    assert re.search(r"^Errors \(5m\):\s+66\.7% \(2 of 3\)$", described_text, re.M)


def test_an_out_of_memory_kill_is_an_event(
    described: tuple[str, Path], lambda_client: Callable[[str], Any]
) -> None:
    url, app = described
    if "memory limit by cgroup" not in LOG.text:
        pytest.skip("no memory cgroup here: the limit is RLIMIT_AS (a MemoryError, no kill)")
    request_id, payload, _ = invoke(lambda_client, url, "hog", {})
    assert payload["errorType"] == "Runtime.OutOfMemory"
    rows = eventually(lambda: [r for r in events(app, "hog") if r[1] == "OOMKilled"])
    assert rows[-1][0] == "Warning"
    assert f"Runtime exited with error: signal: killed (request {request_id})" in rows[-1][2]


def test_a_throttle_is_an_event(
    described: tuple[str, Path], lambda_client: Callable[[str], Any]
) -> None:
    url, app = described
    assert skylift("scale", "gated", str(app), "--max", "0").returncode == 0
    client = lambda_client(url)
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.invoke(FunctionName="gated", Payload=b"{}")
    rows = eventually(lambda: [r for r in events(app, "gated") if r[1] == "Throttled"])
    assert rows[-1][0] == "Warning"
    assert "ReservedFunctionConcurrentInvocationLimitExceeded: limit 0" in rows[-1][2]


def test_replay_of_a_failure_after_the_fix_shows_the_old_error_beside_the_new_result(
    described: tuple[str, Path], lambda_client: Callable[[str], Any]
) -> None:
    url, app = described
    request_id, payload, error = invoke(lambda_client, url, "adder", {"numbers": [1, 2]})
    assert error == "Unhandled" and payload["errorType"] == "ValueError"
    status = skylift("status", str(app)).stdout
    row = next(line for line in status.splitlines() if line.startswith("adder "))
    assert "100%" in row and "ValueError: cannot add [1, 2] yet" in row
    stored(app, "adder", request_id)

    code = (app / "app.py").read_text()
    (app / "app.py").write_text(code.replace(FIXED, 'return {"sum": sum(event["numbers"])}'))
    eventually(lambda: any(r[1] == "Reloaded" for r in events(app, "adder")), timeout=20)

    done = skylift("replay", request_id, str(app))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"replayed {request_id} (adder, ended ")
    columns = [tuple(part.strip() for part in line.split(" | ", 1)) for line in lines[2:]]
    assert columns[0] == ("BEFORE", "NOW")
    assert ("status: error", "status: success") in columns
    # Each column wraps at half the terminal's width: joined, the lines read whole.
    left = "".join(c[0] for c in columns)
    right = "".join(c[1] for c in columns if len(c) == 2)
    assert "error: ValueError: cannot add [1, 2] yet" in left
    assert '"sum": 3' in right and "error:" not in right

    # The same through the control API, as the dashboard offers it on a failed invocation.
    answer = httpx.post(f"{url}/_skylift/invocations/{request_id}/replay", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["before"]["error"] == "ValueError: cannot add [1, 2] yet"
    assert answer.json()["after"] == {"status": "success", "payload": {"sum": 3}}

    other = skylift("replay", request_id, str(app), "--fn", "echo", "--json")
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["after"] == {"status": "success", "payload": {"size": 0}}


def test_an_event_over_the_limit_is_kept_as_a_digest_and_not_replayed(
    described: tuple[str, Path], lambda_client: Callable[[str], Any]
) -> None:
    url, app = described
    event = json.dumps({"blob": "x" * (300 * 1024)}).encode()
    answer = lambda_client(url).invoke(FunctionName="echo", Payload=event)
    assert json.loads(answer["Payload"].read()) == {"size": 300 * 1024}
    request_id = answer["ResponseMetadata"]["RequestId"]
    stored(app, "echo", request_id)

    done = skylift("replay", request_id, str(app))
    assert done.returncode == 2
    assert done.stdout == ""
    digest = hashlib.sha256(event).hexdigest()
    refused = httpx.post(f"{url}/_skylift/invocations/{request_id}/replay", timeout=30)
    assert refused.status_code == 409 and digest in refused.json()["message"]
    assert (
        f"cannot replay {request_id}: its event ({len(event)} bytes) was over the 256 KiB "
        f"kept whole; only its SHA-256 digest ({digest}) was kept"
    ) in done.stderr


def test_replay_of_an_unknown_request_id_says_so(described: tuple[str, Path]) -> None:
    _, app = described
    done = skylift("replay", "0f0e0d0c-no-such-request", str(app))
    assert done.returncode == 2
    assert "no stored invocation has request id '0f0e0d0c-no-such-request'" in done.stderr


def test_describe_reads_the_state_folder_once_the_server_stopped(
    tmp_path: Path, lambda_client: Callable[[str], Any]
) -> None:
    shutil.copy(HERE / "described_app.py", tmp_path / "app.py")
    with serve(str(tmp_path), options=["--quiet"]) as url:
        crashed, _, _ = invoke(lambda_client, url, "troubled", {"exit": 4})
        (tmp_path / "app.py").write_text("def broken(:\n")
        eventually(lambda: any(r[1] == "ReloadFailed" for r in events(tmp_path, "troubled")), 20)
        shutil.copy(HERE / "described_app.py", tmp_path / "app.py")  # describe loads the app
    rows = events(tmp_path, "troubled")
    assert [r[1] for r in rows if r[0] == "Warning"] == ["Crashed", "ReloadFailed"]
    failed = next(r for r in rows if r[1] == "ReloadFailed")
    assert "app.py does not load, old code kept:" in failed[2]
    assert failed[2].endswith("SyntaxError: invalid syntax")
    crash = next(r for r in rows if r[1] == "Crashed")
    assert f"exit status 4 (request {crashed})" in crash[2]
    done = skylift("describe", "troubled", str(tmp_path))
    assert "no server running" in done.stdout
    unknown = skylift("describe", "nobody", str(tmp_path))
    assert unknown.returncode == 2
    assert "the app has no function 'nobody' (functions: adder, echo, gated, hog, troubled)" in (
        unknown.stderr
    )
