"""What a handler's plain AWS SDK calls reach: skylift, never real AWS, never the host's
credentials. Real servers, real boto3 in the instances."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import httpx
import pytest

from skylift.runtime.environ import LOCAL_CREDENTIALS
from skylift.testing import ServerLog, serve

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}

AWS_APP = """
    import json, os
    import boto3
    from botocore.exceptions import ClientError, EndpointConnectionError
    from skylift import App

    app = App()
    app.declare_queue("orders")
    SQS = boto3.client("sqs")  # created at import, as Lambda code does

    @app.function()
    def send(event, context):
        url = SQS.get_queue_url(QueueName="orders")["QueueUrl"]
        SQS.send_message(QueueUrl=url, MessageBody=event["body"])
        boto3.client("s3").put_object(Bucket="reports", Key="r.txt", Body=event["body"])
        answer = boto3.client("lambda").invoke(
            FunctionName="echo", Payload=json.dumps({"echo": event["body"]})
        )
        return json.loads(answer["Payload"].read())

    @app.function()
    def echo(event, context):
        return event

    @app.function()
    def environment(event, context):
        return dict(os.environ)

    @app.function()
    def unserved(event, context):
        calls = {
            "dynamodb": lambda: boto3.client("dynamodb").list_tables(),
            "sts": lambda: boto3.client("sts").get_caller_identity(),
            "route53": lambda: boto3.client("route53").list_hosted_zones(),
            "apigateway": lambda: boto3.client("apigateway").get_rest_apis(),
        }
        answers = {}
        for name, call in calls.items():
            try:
                call()
            except ClientError as exc:
                answers[name] = [exc.response["Error"]["Code"], exc.response["Error"]["Message"]]
            except EndpointConnectionError as exc:
                answers[name] = ["EndpointConnectionError", str(exc)]
            else:
                answers[name] = ["reached", ""]
        return answers

    @app.upload("reports")
    def on_report(event, context):
        print("report", event["Records"][0]["s3"]["object"]["key"])
"""


def write(directory: Path, source: str, name: str = "app.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(source))
    return directory


def invoke(url: str, function: str, event: object = None) -> object:
    lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
    answer = lam.invoke(FunctionName=function, Payload=json.dumps(event or {}))
    assert "FunctionError" not in answer, answer
    return json.loads(answer["Payload"].read())


def test_plain_boto3_clients_in_a_handler_reach_the_running_server(tmp_path):
    app = write(tmp_path / "app", AWS_APP)
    log = ServerLog()
    with serve(str(app), log=log) as url:
        assert invoke(url, "send", {"body": "order 7"}) == {"echo": "order 7"}
        sqs = boto3.client("sqs", endpoint_url=url, **CLIENT)
        queue = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
        got = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
        assert [m["Body"] for m in got] == ["order 7"]
        s3 = boto3.client("s3", endpoint_url=url, **CLIENT)
        assert s3.get_object(Bucket="reports", Key="r.txt")["Body"].read() == b"order 7"


def test_the_shell_environment_never_reaches_an_instance(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAREALLOOKINGKEY01\naws_secret_access_key = s3cr3t\n"
    )
    config = tmp_path / "aws-config"
    config.write_text("[profile prod]\nregion = eu-west-1\nendpoint_url = https://example.com\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYREALKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("DATABASE_PASSWORD", "hunter2")
    app = write(tmp_path / "app", AWS_APP)
    with serve(str(app)) as url:
        monkeypatch.undo()  # the server has the shell's variables; this test's clients not
        env = invoke(url, "environment")
        assert isinstance(env, dict)
        for leaked in ("AWS_PROFILE", "DATABASE_PASSWORD", "HOME"):
            assert leaked not in env
        for name, value in LOCAL_CREDENTIALS.items():
            assert env[name] == value
        assert str(config) not in env.values()
        assert env["AWS_ENDPOINT_URL_SQS"] == url
        # The handler's calls still work: the host's profile and keys changed nothing.
        assert invoke(url, "send", {"body": "still local"}) == {"echo": "still local"}


def test_a_service_skylift_does_not_serve_is_refused_at_once_by_name(tmp_path):
    app = write(tmp_path / "app", AWS_APP)
    log = ServerLog()
    with serve(str(app), log=log) as url:
        answers = invoke(url, "unserved")
    assert isinstance(answers, dict)
    for service in ("dynamodb", "sts", "route53", "apigateway"):
        code, message = answers[service]
        assert code == "NotImplemented", (service, answers[service])
        assert f"skylift does not serve {service}" in message
        assert "never reaches real AWS" in message
    assert "called dynamodb, which skylift does not serve" in log.text


def skylift(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skylift.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def test_invoke_without_a_server_refuses_aws_calls_and_says_what_to_do(tmp_path):
    app = write(tmp_path / "app", AWS_APP)
    done = skylift("invoke", "send", str(app), "--event", str(write_event(tmp_path)))
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] == "ClientError"
    assert "NotImplemented" in error["errorMessage"]
    assert "skylift up" in error["errorMessage"] and "--url" in error["errorMessage"]


def write_event(tmp_path: Path) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"body": "x"}))
    return path


TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")


def test_every_invocation_has_its_own_trace_header(tmp_path):
    app = write(tmp_path / "app", AWS_APP)
    with serve(str(app)) as url:
        first = invoke(url, "environment")
        second = invoke(url, "environment")
    assert isinstance(first, dict) and isinstance(second, dict)
    assert TRACE.match(first["_X_AMZN_TRACE_ID"]), first["_X_AMZN_TRACE_ID"]
    assert TRACE.match(second["_X_AMZN_TRACE_ID"])
    assert first["_X_AMZN_TRACE_ID"] != second["_X_AMZN_TRACE_ID"]


TRACE_APP = """
    import os, subprocess
    from skylift import App

    app = App()

    @app.function()
    def trace(event, context):
        shell = subprocess.run(
            ["sh", "-c", 'echo "$_X_AMZN_TRACE_ID"'], capture_output=True, text=True
        )
        seen = [os.environ.get("_X_AMZN_TRACE_ID"), shell.stdout.strip()]
        if event.get("meddle"):  # a handler may set or delete it: the next one is ours
            os.environ["_X_AMZN_TRACE_ID"] = "the handler's"
            if event["meddle"] == "delete":
                del os.environ["_X_AMZN_TRACE_ID"]
        return seen
"""


def test_a_subprocess_sees_the_invocations_trace_header(tmp_path):
    app = write(tmp_path / "app", TRACE_APP)
    with serve(str(app)) as url:
        answers = [invoke(url, "trace", {"meddle": m}) for m in ("", "set", "delete", "", "")]
    traces = [a[0] for a in answers]  # type: ignore[index]
    assert all(TRACE.match(t) for t in traces), traces
    assert len(set(traces)) == len(traces)
    for ours, shell in answers:  # type: ignore[misc]
        assert shell == ours


SAM_TEMPLATE = """
    AWSTemplateFormatVersion: "2010-09-09"
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Show:
        Type: AWS::Serverless::Function
        Properties:
          Handler: show.handler
          Runtime: python3.11
          CodeUri: .
          Environment:
            Variables:
              TABLE: orders-prod
              STAGE: prod
              KEPT: as-declared
"""


def test_env_vars_file_overrides_declared_variables_as_sam_local_does(tmp_path):
    app = write(tmp_path / "sam", SAM_TEMPLATE, "template.yaml")
    write(
        app,
        """
        import os
        AT_IMPORT = os.environ["TABLE"]
        def handler(event, context):
            names = ("TABLE", "STAGE", "KEPT", "EXTRA")
            return {"import": AT_IMPORT, **{n: os.environ.get(n) for n in names}}
        """,
        "show.py",
    )
    env_file = tmp_path / "env.json"
    env_file.write_text(
        json.dumps(
            {"Parameters": {"STAGE": "local", "EXTRA": "1"}, "Show": {"TABLE": "orders-local"}}
        )
    )
    done = skylift("invoke", "Show", str(app), "--env-vars", str(env_file))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "import": "orders-local",
        "TABLE": "orders-local",
        "STAGE": "local",
        "KEPT": "as-declared",
        "EXTRA": None,
    }
    assert "declares EXTRA, so it is not set" in done.stderr
    with serve(str(app), options=["--env-vars", str(env_file)]) as url:
        assert invoke(url, "Show")["TABLE"] == "orders-local"  # type: ignore[index]


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"Parameters": ["A"]}', "must map variable names to values"),
        ('{"Parameters": {"A": {"x": 1}}}', "a value must be a string"),
        ("{nope", "not valid JSON"),
    ],
)
def test_a_bad_env_vars_file_is_refused_with_what_to_fix(tmp_path, content, complaint):
    app = write(tmp_path / "sam", SAM_TEMPLATE, "template.yaml")
    (app / "show.py").write_text("def handler(event, context):\n    return 1\n")
    env_file = tmp_path / "env.json"
    env_file.write_text(content)
    done = skylift("invoke", "Show", str(app), "--env-vars", str(env_file))
    assert done.returncode == 2
    assert complaint in done.stderr and str(env_file) in done.stderr


LOGGING_APP = """
    import logging
    from aws_lambda_powertools import Logger
    from skylift import App

    # At import, as many handlers do. As on Lambda, the runtime's root handler already
    # exists, so basicConfig adds none (and sets no level): the level is set explicitly.
    logging.basicConfig()
    logging.getLogger().setLevel(logging.INFO)
    LOG = Logger(service="orders")
    app = App()

    @app.function()
    def plain(event, context):
        logging.getLogger("shop").info("plain line")
        return {}

    @app.function()
    @LOG.inject_lambda_context
    def powertools(event, context):
        LOG.info("powertools line")
        return {}

    @app.function(log_format="JSON", log_level="WARN")
    def structured(event, context):
        logging.getLogger("shop").info("hidden below WARN")
        logging.getLogger("shop").warning("json line", extra={"order": 7})
        return {}
"""


def tail_log(url: str, function: str) -> tuple[str, str]:
    """(request id, the invocation's log) through the Invoke API's LogType=Tail."""
    import base64

    lam = boto3.client("lambda", endpoint_url=url, **CLIENT)
    answer = lam.invoke(FunctionName=function, Payload=b"{}", LogType="Tail")
    log = base64.b64decode(answer["LogResult"]).decode()
    return answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"], log


def test_logging_configured_at_import_prints_each_line_once(tmp_path):
    app = write(tmp_path / "app", LOGGING_APP)
    with serve(str(app)) as url:
        request_id, log = tail_log(url, "plain")
        lines = [line for line in log.splitlines() if "plain line" in line]
        assert len(lines) == 1, log
        assert lines[0].startswith("[INFO]\t") and f"\t{request_id}\tplain line" in lines[0]

        request_id, log = tail_log(url, "powertools")
        lines = [line for line in log.splitlines() if "powertools line" in line]
        assert len(lines) == 1, log
        record = json.loads(lines[0])
        assert record["function_request_id"] == request_id
        assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", record["xray_trace_id"])


def test_json_log_format_gives_lambdas_json_lines_at_the_chosen_level(tmp_path):
    app = write(tmp_path / "app", LOGGING_APP)
    with serve(str(app)) as url:
        request_id, log = tail_log(url, "structured")
    assert "hidden below WARN" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(lines) == 1, log
    record = lines[0]
    assert record["level"] == "WARNING" and record["message"] == "json line"
    assert record["logger"] == "shop" and record["requestId"] == request_id
    assert record["order"] == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["timestamp"])


def test_an_instance_calls_no_aws_from_a_bare_http_route(tmp_path):
    # An HTTP route's handler too: the environment is the instance's, whatever triggers it.
    app = write(
        tmp_path / "app",
        """
        import os
        from skylift import App
        app = App()

        @app.http("/env")
        def env(event, context):
            return {"endpoint": os.environ["AWS_ENDPOINT_URL"]}
        """,
    )
    with serve(str(app)) as url:
        assert httpx.get(url + "/env").json() == {"endpoint": url + "/_skylift/unserved"}


def test_an_sqs_message_with_a_trace_header_continues_that_trace(tmp_path):
    app = write(
        tmp_path / "app",
        """
        import os
        from skylift import App
        app = App()

        @app.queue("traced")
        def consume(event, context):
            record = event["Records"][0]
            print("TRACE", os.environ["_X_AMZN_TRACE_ID"], record["attributes"]["AWSTraceHeader"])
        """,
    )
    root = "1-5759e988-bd862e3fe1be46a994272793"
    log = ServerLog()
    with serve(str(app), log=log) as url:
        sqs = boto3.client("sqs", endpoint_url=url, **CLIENT)
        queue = sqs.get_queue_url(QueueName="traced")["QueueUrl"]
        sqs.send_message(
            QueueUrl=queue,
            MessageBody="x",
            MessageSystemAttributes={
                "AWSTraceHeader": {
                    "DataType": "String",
                    "StringValue": f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1",
                }
            },
        )
        deadline = time.monotonic() + 10
        while "TRACE" not in log.text and time.monotonic() < deadline:
            time.sleep(0.05)
    line = next(line for line in log.text.splitlines() if "TRACE" in line)
    trace, header = line.split("TRACE ", 1)[1].split(" ", 1)
    assert trace.startswith(f"Root={root};Parent=") and trace.endswith(";Sampled=1")
    assert "53995c3f42cd8ad8" not in trace  # Lambda's own segment is the parent
    assert header == f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1"
