"""`skylift logs --url` against a real `skylift up`: the logs API's pages and errors,
the same output as reading the state folder, follow, and the token."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from observe_support import HERE, Served, eventually, follow_delays, skylift

from skylift.cli import logs as logs_cli
from skylift.testing import serve


def invoked(served: Served, count: int) -> list[str]:
    """Request ids of `count` calls of hello, once their logs are stored."""
    ids = [served.get("/hello").text for _ in range(count)]

    def stored() -> bool:
        text = skylift("logs", "hello", str(served.app), "--filter", "REPORT").stdout
        return all(request_id in text for request_id in ids)

    eventually(stored)
    return ids


def same_moment(
    served: Served, args: tuple[str, ...]
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The local and the remote output of `skylift logs ARGS`, read while no line was
    stored in between (the server is shared: lines of earlier tests' invocations may
    still be on their way to the files)."""
    for _ in range(20):
        local = skylift("logs", *args, str(served.app))
        remote = skylift("logs", *args, "--url", served.url)
        if skylift("logs", *args, str(served.app)).stdout == local.stdout:
            return local, remote
    raise AssertionError(f"the logs kept changing: {args}")


def test_remote_output_is_the_local_output(observed: Served) -> None:
    invoked(observed, 3)
    observed.get("/boom")
    eventually(lambda: "about to fail" in skylift("logs", "boom", str(observed.app)).stdout)
    for args in (
        (),
        ("hello",),
        ("--json",),
        ("hello", "--filter", 'REPORT -"Init Duration"'),
        ("--filter", '"about to fail"'),
        ("hello", "--since", "10m", "--json"),
    ):
        local, remote = same_moment(observed, args)
        assert local.returncode == remote.returncode == 0, (args, remote.stderr)
        assert remote.stdout == local.stdout, args
        assert remote.stdout, args
    request_id = invoked(observed, 1)[0]
    remote = skylift("logs", "hello", "--request-id", request_id, "--url", observed.url)
    assert len(remote.stdout.splitlines()) == 4 and request_id in remote.stdout


def test_pages_lose_and_repeat_nothing(observed: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    invoked(observed, 4)
    whole = httpx.get(observed.url + "/_skylift/logs", params={"function": "hello"}).json()
    assert "nextToken" not in whole  # one page held them all
    events, token, pages = [], None, 0
    while True:
        params = {"function": "hello", "limit": "3", **({"next_token": token} if token else {})}
        page = httpx.get(observed.url + "/_skylift/logs", params=params).json()
        assert len(page["events"]) <= 3
        events += page["events"]
        pages += 1
        token = page.get("nextToken")
        if token is None:
            break
    assert pages > 5
    assert [e["eventId"] for e in events] == [e["eventId"] for e in whole["events"]]
    assert len({e["eventId"] for e in events}) == len(events) >= 16
    assert set(events[0]) == {
        "logGroupName",
        "logStreamName",
        "timestamp",
        "message",
        "ingestionTime",
        "eventId",
    }
    # Nothing new since the last page: its forward token gives nothing, and then the next.
    later = httpx.get(
        observed.url + "/_skylift/logs",
        params={"function": "hello", "next_token": page["nextForwardToken"]},
    ).json()
    assert later["events"] == []
    new = invoked(observed, 1)[0]
    later = httpx.post(
        observed.url + "/_skylift/logs",
        json={"function": "hello", "next_token": later["nextForwardToken"]},
    ).json()
    assert [e["message"].split()[0] for e in later["events"]] == ["START", "hello", "END", "REPORT"]
    assert new in later["events"][0]["message"]
    # The CLI pages the same way (two events a page here): the same lines as one read.
    monkeypatch.setattr(logs_cli, "PAGE", 2)
    paged = CliRunner().invoke(logs_cli.logs, ["hello", "--url", observed.url])
    assert paged.exit_code == 0, paged.output
    assert paged.output == skylift("logs", "hello", str(observed.app)).stdout


def test_follow_shows_a_new_invocation_within_a_second(observed: Served) -> None:
    delays, lines = follow_delays(observed, "--url", observed.url)
    assert min(delays) < 1.0, delays
    starts = [line for line in lines if "START RequestId" in line]  # nothing printed twice
    assert len(starts) == len(set(starts))


def test_bad_queries_answer_400_and_the_cli_says_what_is_wrong(observed: Served) -> None:
    url = observed.url + "/_skylift/logs"
    for params, said in (
        ({"filter": '"open'}, "unclosed quote"),
        ({"function": "../x"}, "not a function name"),
        ({"function": "nope"}, "is not served here"),
        ({"since": "yesterday"}, "10m"),
        ({"since": "²"}, "10m"),  # a digit to isdigit(), not to int()
        ({"since": "9" * 400 + "w"}, "10m"),
        ({"since": "9" * 30}, "out of range"),
        ({"limit": "100000"}, "from 1 to 10000"),
        ({"next_token": "forged"}, "not a token this server gave"),
        ({"colour": "red"}, "unknown parameters colour"),
    ):
        answer = httpx.get(url, params=params)
        assert answer.status_code == 400, params
        assert said in answer.json()["message"], params
    assert httpx.put(url).status_code == 405
    long = httpx.post(url, json={"next_token": "A" * 3_000_000}, timeout=30)
    assert long.status_code == 400 and "log files stored could need" in long.json()["message"]
    bad = skylift("logs", "hello", "--filter", '"unclosed', "--url", observed.url)
    assert bad.returncode == 2 and "unclosed quote" in bad.stderr and not bad.stdout
    unknown = skylift("logs", "nope", "--url", observed.url)
    assert unknown.returncode == 2 and "'nope' is not served here" in unknown.stderr
    assert "hello" in unknown.stderr  # the functions it has
    gone = skylift("logs", "--url", "http://127.0.0.1:9")
    assert gone.returncode == 2 and "cannot reach a skylift server" in gone.stderr


TOKEN = "logs-test-token-0123456789"


def test_the_token_is_required_when_the_server_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(HERE / "observed_app.py", tmp_path / "app.py")
    monkeypatch.setenv("SKYLIFT_TOKEN", TOKEN)
    with serve(str(tmp_path), options=["--quiet"]) as url:
        request_id = httpx.get(url + "/hello", timeout=30).text
        refused = httpx.get(url + "/_skylift/logs", timeout=30)
        assert refused.status_code == 403
        without = {k: v for k, v in os.environ.items() if k != "SKYLIFT_TOKEN"}
        done = subprocess.run(
            [sys.executable, "-m", "skylift.cli", "logs", "--url", url],
            capture_output=True,
            text=True,
            env=without,
            timeout=60,
        )
        assert done.returncode == 2 and not done.stdout
        assert "refused" in done.stderr and "SKYLIFT_TOKEN" in done.stderr

        def lines() -> list[str] | None:
            found = skylift("logs", "hello", "--url", url, "--json")  # the token inherited
            assert found.returncode == 0, found.stderr
            events = [json.loads(line) for line in found.stdout.splitlines()]
            return events if any("REPORT" in e["message"] for e in events) else None

        events = eventually(lines)
        assert request_id in events[0]["message"]
