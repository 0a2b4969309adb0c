"""`skylift logs` against a running server's state folder: Lambda's lines, streams,
filters, JSON, and follow."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

from observe_support import Served, eventually, follow_delays, skylift

STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


def logs(served: Served, *args: str) -> list[str]:
    done = skylift("logs", *args, str(served.app))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def written(served: Served, *args: str) -> list[str] | None:
    """`logs(...)`'s lines once there are any: the function's first log is written off
    the request path, and until then `skylift logs FUNCTION` exits 2 (no logs yet)."""
    done = skylift("logs", *args, str(served.app))
    return done.stdout.splitlines() if done.returncode == 0 else None


def invocation_lines(served: Served, function: str, request_id: str) -> list[str]:
    def four() -> list[str] | None:
        done = skylift("logs", function, str(served.app), "--request-id", request_id)
        lines = done.stdout.splitlines()  # exit 2 until the function's first log is written
        done = any("REPORT RequestId" in x or "platform.report" in x for x in lines)
        return lines if done else None

    return eventually(four)


def test_an_invocation_is_stored_as_lambda_prints_it(observed: Served) -> None:
    request_id = observed.get("/hello").text
    lines = invocation_lines(observed, "hello", request_id)
    messages = [line.split(" ", 2)[2] for line in lines]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert messages[1] == f"hello from {request_id}"
    assert messages[2] == f"END RequestId: {request_id}"
    assert re.match(
        rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t",
        messages[3],
    )
    assert len(messages) == 4  # --request-id keeps other invocations out
    assert all(STREAM.match(line.split(" ")[1]) for line in lines)


def test_a_timeout_shows_cloudwatchs_lines(observed: Served) -> None:
    assert observed.get("/slow").status_code == 500  # API Gateway's error page
    lines = eventually(lambda: written(observed, "slow", "--filter", "REPORT"))
    text = "\n".join(logs(observed, "slow"))
    assert re.search(r"Z [0-9a-f-]{36} Task timed out after 1\.\d\d seconds", text)
    assert "Status: timeout" in lines[-1]


def test_json_log_format_gives_lambdas_platform_records(observed: Served) -> None:
    request_id = observed.get("/structured").text
    lines = invocation_lines(observed, "structured", request_id)
    records = [json.loads(line.split(" ", 2)[2]) for line in lines]
    kinds = [r.get("type") for r in records]
    assert kinds[0] == "platform.start" and kinds[-2:] == [
        "platform.runtimeDone",
        "platform.report",
    ]
    assert records[0]["record"] == {"requestId": request_id, "version": "$LATEST"}
    report = records[-1]["record"]
    assert report["requestId"] == request_id and report["status"] == "success"
    assert {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"} <= set(
        report["metrics"]
    )
    assert records[-2]["record"]["status"] == "success"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", records[0]["time"])
    # The function's own line, in the runtime's JSON form, sits between them.
    assert any(r.get("message") == "structured hello" for r in records[1:-2])


def test_filter_pattern_terms_exclusions_and_phrases(observed: Served) -> None:
    request_id = observed.get("/boom").headers["apigw-requestid"]
    assert request_id
    eventually(lambda: skylift("logs", "boom", str(observed.app)).stdout.count("REPORT"))
    assert logs(observed, "boom", "--filter", '"about to fail"')
    phrase = logs(observed, "--filter", '"about to fail"')
    assert phrase and all("about to fail" in line for line in phrase)
    assert all(" boom " in line for line in phrase)  # every function, named on each line
    no_init = logs(observed, "boom", "--filter", 'REPORT -"Init Duration"')
    assert all("Init Duration" not in line and "REPORT" in line for line in no_init)
    either = logs(observed, "boom", "--filter", "?START ?END")
    assert either and all(" START " in line or " END " in line for line in either)
    bad = skylift("logs", "boom", str(observed.app), "--filter", '"unclosed')
    assert bad.returncode == 2 and "unclosed quote" in bad.stderr


def test_json_output_and_one_stream_per_instance(observed: Served) -> None:
    with ThreadPoolExecutor(2) as pool:  # two at once: two instances
        ids = list(pool.map(lambda _: observed.get("/wait").text, range(2)))
    for request_id in ids:
        invocation_lines(observed, "wait", request_id)
    done = skylift("logs", "wait", str(observed.app), "--json")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert {e["logGroupName"] for e in events} == {"/aws/lambda/wait"}
    assert set(events[0]) == {
        "logGroupName",
        "logStreamName",
        "timestamp",
        "message",
        "ingestionTime",
    }
    streams = {e["logStreamName"] for e in events if e["message"] == "waited"}
    assert len(streams) == 2 and all(STREAM.match(s) for s in streams)


def test_since_limits_by_time(observed: Served) -> None:
    request_id = observed.get("/hello").text
    invocation_lines(observed, "hello", request_id)
    assert any(request_id in line for line in logs(observed, "hello", "--since", "10m"))
    assert logs(observed, "hello", "--since", "2999-01-01T00:00:00Z") == []
    bad = skylift("logs", "hello", str(observed.app), "--since", "yesterday")
    assert bad.returncode == 2 and "10m" in bad.stderr


def test_unknown_function_says_which_have_logs(observed: Served) -> None:
    done = skylift("logs", "nope", str(observed.app))
    assert done.returncode == 2 and "hello" in done.stderr


def test_follow_prints_a_new_invocation_within_a_second(observed: Served) -> None:
    delays, _ = follow_delays(observed, str(observed.app))
    # Typically 0.2-0.5 s (a 0.2 s write batch, a 0.25 s poll); the best of three
    # keeps a loaded CI machine's pauses from failing it.
    assert min(delays) < 1.0, delays
