"""Hot reload as a developer meets it: edit the code while `skylift up` serves traffic."""

from __future__ import annotations

import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from skylift.testing import ServerLog, serve

APP = """
    from skylift import App

    app = App()
    VERSION = {version}

    @app.http("{path}", methods=["GET"])
    def version(event, context):
        return {{"v": VERSION}}
"""


def write(app: Path, version: object, path: str = "/v") -> None:
    (app / "app.py").write_text(textwrap.dedent(APP.format(version=version, path=path)))


def wait_for(
    url: str, expected: dict[str, object], timeout: float = 15, log: ServerLog | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(url)
        if answer.status_code == 200 and answer.json() == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered {expected}:\n{log.text if log else ''}")


def wait_for_line(log: ServerLog, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.text:
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{log.text}"
        time.sleep(0.05)


def test_an_edit_is_served_without_a_failed_request(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    write(app, 1)
    log = ServerLog()
    with serve(str(app), log=log, options=["--quiet"]) as url:
        codes: Counter[int] = Counter()
        seen: set[int] = set()
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                while not stop.is_set():
                    answer = client.get("/v")
                    codes[answer.status_code] += 1
                    if answer.status_code == 200:
                        seen.add(answer.json()["v"])

        clients = [threading.Thread(target=load) for _ in range(4)]
        for client in clients:
            client.start()
        try:
            time.sleep(0.5)
            write(app, 2)
            wait_for(url + "/v", {"v": 2}, log=log)
            time.sleep(0.5)
        finally:
            stop.set()
            for client in clients:
                client.join()
    assert set(codes) == {200}, codes
    assert seen == {1, 2}
    assert "reloaded after a change to app.py" in log.text


def test_an_edit_that_does_not_import_keeps_the_old_code_serving(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    write(app, 1)
    log = ServerLog()
    with serve(str(app), log=log, options=["--quiet"]) as url:
        (app / "app.py").write_text("from skylift import App\napp = App(\ndef broken(:\n")
        wait_for_line(log, "does not load; still serving the previous code")
        assert httpx.get(url + "/v").json() == {"v": 1}
        write(app, 3)
        wait_for(url + "/v", {"v": 3})


def test_routes_follow_the_code(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    write(app, 1, "/old")
    with serve(str(app), options=["--quiet"]) as url:
        assert httpx.get(url + "/old").status_code == 200
        write(app, 2, "/new")
        wait_for(url + "/new", {"v": 2})
        assert httpx.get(url + "/old").status_code == 404


def test_no_reload_keeps_the_code_it_started_with(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    write(app, 1)
    with serve(str(app), options=["--quiet", "--no-reload"]) as url:
        write(app, 2)
        time.sleep(1.5)
        assert httpx.get(url + "/v").json() == {"v": 1}


def test_a_reload_keeps_what_the_lambda_api_changed(tmp_path):
    import json

    import boto3

    app = tmp_path / "app"
    app.mkdir()
    source = """
        import os
        from skylift import App

        app = App()

        @app.function(environment={{"MODE": "declared"}})
        def show(event, context):
            return {{"x": os.environ.get("MODE"), "v": {version}}}
    """
    (app / "app.py").write_text(textwrap.dedent(source.format(version=1)))
    log = ServerLog()
    with serve(str(app), log=log, options=["--quiet"]) as url:
        lam = boto3.client(
            "lambda",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )

        def show() -> object:
            return json.loads(lam.invoke(FunctionName="show", Payload=b"{}")["Payload"].read())

        lam.update_function_configuration(
            FunctionName="show", Environment={"Variables": {"MODE": "api"}}
        )
        assert show() == {"x": "api", "v": 1}
        (app / "app.py").write_text(textwrap.dedent(source.format(version=2)))
        wait_for_line(log, "reloaded after a change to app.py")
        assert show() == {"x": "api", "v": 2}
        lam.close()


GROWN = """
    from skylift import App

    app = App()

    @app.http("/v", methods=["GET"])
    def version(event, context):
        return {"v": 2}

    @app.queue("jobs")
    def worker(event, context):
        with open("MARKS_PATH", "a") as f:
            for record in event["Records"]:
                f.write(record["body"] + "\\n")

    @app.schedule("rate(1 minute)")
    def ticker(event, context):
        with open("MARKS_PATH.ticks", "a") as f:
            f.write(event["detail-type"] + "\\n")
"""


def test_added_and_removed_functions_and_their_triggers_follow_the_code(tmp_path):
    import boto3

    app = tmp_path / "app"
    app.mkdir()
    marks = tmp_path / "marks.txt"
    write(app, 1)
    log = ServerLog()
    with serve(str(app), log=log, options=["--sandbox", "off"]) as url:
        (app / "app.py").write_text(textwrap.dedent(GROWN).replace("MARKS_PATH", str(marks)))
        wait_for(url + "/v", {"v": 2}, log=log)
        wait_for_line(log, "skylift: added ticker, worker")
        # A new queue, created by the reload, with its function polling it.
        sqs = boto3.client(
            "sqs",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        queue = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody="first job")
        deadline = time.monotonic() + 15
        while "first job" not in (marks.read_text() if marks.exists() else ""):
            assert time.monotonic() < deadline, f"the new queue was never polled:\n{log.text}"
            time.sleep(0.1)
        # Removed again: the schedule stops, the function is gone from the Invoke API.
        write(app, 3)
        wait_for(url + "/v", {"v": 3}, log=log)
        wait_for_line(log, "skylift: removed ticker, worker")
        missing = httpx.post(f"{url}/2015-03-31/functions/worker/invocations", content=b"{}")
        assert missing.status_code == 404
        assert "restart" not in log.text


def test_a_reload_restarts_only_the_triggers_that_changed(live, tmp_path):
    from skylift.engine.reload import Reloader

    app = tmp_path / "app"
    app.mkdir()
    write(app, 1)
    running = live(app, state_dir=tmp_path / "state")
    platform = running.platform
    running.run(platform.start_sources())
    reloader = Reloader(platform, say=lambda _: None)
    assert platform.sources is not None

    def reload() -> None:
        assert running.run(reloader.reload())

    (app / "app.py").write_text(textwrap.dedent(GROWN))
    reload()
    sources = platform.sources
    assert [(m.function, m.trigger.queue) for m in sources.mappings] == [("worker", "jobs")]
    assert [(e.function, e.trigger.expression) for e in sources.scheduler.entries] == [
        ("ticker", "rate(1 minute)")
    ]
    assert set(sources.async_invocations.specs) == {"version", "worker", "ticker"}
    mapping = sources.mappings[0]
    # The same triggers again: the running mapping stays (a paused one would stay paused).
    (app / "app.py").write_text(textwrap.dedent(GROWN) + "\n# an edit\n")
    reload()
    assert sources.mappings == [mapping]
    write(app, 3)
    reload()
    assert sources.mappings == [] and sources.scheduler.entries == []
    assert set(sources.async_invocations.specs) == {"version"}
    assert set(platform.pools) == {"version"}
