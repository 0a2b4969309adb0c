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
