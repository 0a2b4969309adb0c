"""The `skylift` command as a user runs it: real processes, real output streams."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from skylift.testing import ServerLog, serve

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "make-change"


def skylift(*args: str, stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def write(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(source))
    return directory


def test_invoke_prints_result_on_stdout_and_log_on_stderr():
    event = json.dumps({"body": json.dumps({"amount": "0.41"})})
    done = skylift("invoke", "change", str(EXAMPLE), "--event", "-", stdin=event)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert json.loads(result["body"]) == {
        "res": [{"1": "quarters"}, {"1": "dimes"}, {"1": "nickels"}, {"1": "pennies"}]
    }
    assert "START RequestId:" in done.stderr
    assert "REPORT RequestId:" in done.stderr and "Init Duration:" in done.stderr


def test_invoke_exits_1_on_a_function_error_with_its_output(tmp_path):
    app = write(
        tmp_path,
        """
        from skylift import App
        app = App()
        @app.function()
        def fails(event, context):
            print("looking at", event["item"])
            raise KeyError("price")
    """,
    )
    (tmp_path / "event.json").write_text('{"item": "apple"}')
    done = skylift("invoke", "fails", str(app), "--event", str(tmp_path / "event.json"))
    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "KeyError"
    assert "looking at apple" in done.stderr


def test_invoke_rejects_an_event_that_is_not_json(tmp_path):
    done = skylift("invoke", "change", str(EXAMPLE), "--event", "-", stdin="{not json")
    assert done.returncode == 2
    assert "not valid JSON" in done.stderr


def test_invoke_unknown_function_names_the_known_ones():
    done = skylift("invoke", "nope", str(EXAMPLE))
    assert done.returncode == 2
    assert "no function named 'nope'" in done.stderr and "change" in done.stderr


def test_invoke_on_a_server_shows_its_error_message():
    with serve(str(EXAMPLE)) as url:
        done = skylift("invoke", "nope", "--url", url)
    assert done.returncode == 2
    # The Lambda API's own words: its error type and message, never an empty message.
    assert "ResourceNotFoundException: Function not found:" in done.stderr
    assert ":function:nope" in done.stderr


def test_invoke_without_a_name_runs_the_only_function():
    event = json.dumps({"body": json.dumps({"amount": "0.41"})})
    done = skylift("invoke", str(EXAMPLE), "-e", "-", stdin=event)
    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["body"])["res"][0] == {"1": "quarters"}


def test_invoke_without_a_name_on_an_app_of_several_names_them(tmp_path):
    app = write(
        tmp_path / "two",
        """
        from skylift import App
        app = App()

        @app.function()
        def first(event, context):
            return 1

        @app.function()
        def second(event, context):
            return 2
        """,
    )
    done = skylift("invoke", str(app))
    assert done.returncode == 2
    assert "the app declares 2 functions (first, second): name the one" in done.stderr


def test_an_event_file_given_as_the_app_gets_the_hint_to_use_e(tmp_path):
    event = tmp_path / "event.json"
    event.write_text("{}")
    done = skylift("invoke", "change", str(event))
    assert done.returncode == 2
    assert f"is a JSON file, not an app: to send it as the event, use -e {event}" in (done.stderr)


def test_up_refuses_a_bad_declaration_naming_the_function(tmp_path):
    app = write(
        tmp_path,
        """
        from skylift import App
        app = App()
        @app.http("/a", methods=["GET"])
        def first(event, context): pass
        @app.http("/a", methods=["GET"])
        def second(event, context): pass
    """,
    )
    done = skylift("up", str(app), "--port", "0")
    assert done.returncode == 2
    assert "function 'second'" in done.stderr and "already served by function 'first'" in (
        done.stderr
    )


def test_up_refuses_a_directory_without_an_app(tmp_path):
    done = skylift("up", str(tmp_path), "--port", "0")
    assert done.returncode == 2
    assert "neither app.py nor template.yaml" in done.stderr


SAM_BESIDE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: app.lambda_handler
      Runtime: python3.11
"""


def test_a_sam_folder_with_app_py_beside_its_template_loads_the_template(tmp_path):
    project = write(
        tmp_path / "sam-app",
        """
        def lambda_handler(event, context):
            return {"hello": "from the template"}
        """,
    )
    (project / "template.yaml").write_text(SAM_BESIDE)
    done = skylift("invoke", "Hello", str(project))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"hello": "from the template"}


def test_a_skylift_app_py_without_an_app_beside_a_template_names_template(tmp_path):
    project = write(
        tmp_path / "mixed",
        """
        import skylift

        def lambda_handler(event, context):
            return 1
        """,
    )
    (project / "template.yaml").write_text(SAM_BESIDE)
    done = skylift("invoke", "Hello", str(project))
    assert done.returncode == 2
    assert "defines 0 skylift App objects" in done.stderr
    assert "to load the SAM template beside it instead, pass --template template.yaml" in (
        done.stderr
    )


def test_up_reports_an_app_that_fails_to_import(tmp_path):
    app = write(tmp_path, "import not_installed_anywhere\n")
    done = skylift("up", str(app), "--port", "0")
    assert done.returncode == 2
    assert "No module named 'not_installed_anywhere'" in done.stderr


def test_up_serves_a_sam_template_and_lists_routes(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "hello.py").write_text(
        "def handler(event, context):\n"
        "    print('hello from', event['path'])\n"
        "    return {'statusCode': 200, 'body': event['path']}\n"
        "def broken(event, context):\n"
        "    raise ValueError('secret')\n"
    )
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent("""
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Hello:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              CodeUri: src/
              Handler: hello.handler
              Events:
                Get:
                  Type: Api
                  Properties:
                    Path: /hello/{name}
                    Method: get
          Broken:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              CodeUri: src/
              Handler: hello.broken
              Events:
                Get:
                  Type: HttpApi
                  Properties:
                    Path: /broken
                    Method: get
                    PayloadFormatVersion: "1.0"
    """)
    )
    import httpx

    log = ServerLog()
    with serve(str(tmp_path), log=log) as url:
        assert httpx.get(url + "/hello/world").text == "/hello/world"
        # An HTTP API answers a failure with its own error page, whatever the payload format.
        broken = httpx.get(url + "/broken")
        assert (broken.status_code, broken.json()) == (500, {"message": "Internal Server Error"})
    assert "GET" in log.text and "/hello/{name}" in log.text and "-> Hello" in log.text
    # Each invocation's log shows on the server's terminal, as with sam local.
    assert "hello from /hello/world" in log.text and "REPORT RequestId:" in log.text
    assert "[ERROR] ValueError: secret" in log.text


def test_up_on_a_busy_port_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = skylift("up", str(EXAMPLE), "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr


@pytest.mark.parametrize("arg", ["app.py", "app:app"])
def test_app_can_be_a_file_or_module_attribute(arg):
    done = skylift("invoke", "change", arg, cwd=EXAMPLE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["statusCode"] == 400  # {} has no body: a 400 from the app


def test_schedules_lists_next_fire_times(tmp_path):
    app = write(
        tmp_path,
        """
        from skylift import App
        app = App()
        @app.schedule("cron(30 12 1 JAN ? 2030-2031)")
        def yearly(event, context): pass
        @app.schedule("rate(5 minutes)", enabled=False)
        def paused(event, context): pass
    """,
    )
    done = skylift("schedules", str(app))
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("\t", 1) for line in done.stdout.splitlines())
    assert lines["yearly"] == (
        "cron(30 12 1 JAN ? 2030-2031)\tenabled\t2030-01-01 12:30Z, 2031-01-01 12:30Z"
    )
    assert lines["paused"] == "rate(5 minutes)\tdisabled\tnever"


def test_a_bad_schedule_fails_at_load_with_eventbridge_reason(tmp_path):
    app = write(
        tmp_path,
        """
        from skylift import App
        app = App()
        @app.schedule("cron(0 12 * * * *)")
        def both_days(event, context): pass
    """,
    )
    done = skylift("up", str(app), "--port", "0")
    assert done.returncode == 2
    assert "function 'both_days'" in done.stderr and "ScheduleExpression is not valid" in (
        done.stderr
    )
