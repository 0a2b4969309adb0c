"""`skylift export sam`: cfn-lint finds no error, and skylift's own SAM loader reads back
what was exported."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from export_apps import SHOP, all_apps, skylift, tool, write_app

from skylift import sam
from skylift.export.model import load_app
from skylift.gateway.server import run
from skylift.loader import resolve_target
from skylift.spec import FunctionSpec, Resources

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: test
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
    Environment:
      Variables:
        STAGE: !Ref Stage
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 120
      DelaySeconds: 2
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDLQ.Arn
        maxReceiveCount: 5
  OrdersDLQ:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: orders-dead
      MessageRetentionPeriod: 1209600
  Events:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
  Photos:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: photos-bucket
  Api:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: orders-api
      Handler: handlers.api
      CodeUri: src
      MemorySize: 512
      EphemeralStorage: {Size: 2048}
      ReservedConcurrentExecutions: 20
      AutoPublishAlias: live
      ProvisionedConcurrencyConfig:
        ProvisionedConcurrentExecutions: 2
      LoggingConfig:
        LogFormat: JSON
        ApplicationLogLevel: WARN
      Environment:
        Variables:
          TABLE: orders
      Events:
        List:
          Type: HttpApi
          Properties: {Path: /orders, Method: get}
        Old:
          Type: Api
          Properties: {Path: "/v1/orders/{id}", Method: ANY}
        Everything:
          Type: HttpApi
          Properties: {PayloadFormatVersion: "1.0"}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handlers.worker
      CodeUri: src
      DeadLetterQueue:
        Type: SQS
        TargetArn: !GetAtt OrdersDLQ.Arn
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        MaximumEventAgeInSeconds: 600
        DestinationConfig:
          OnSuccess: {Type: Lambda, Destination: !GetAtt Api.Arn}
          OnFailure: {Type: SQS, Destination: !GetAtt OrdersDLQ.Arn}
      Events:
        Take:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
            BatchSize: 50
            MaximumBatchingWindowInSeconds: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 5}
        Audit:
          Type: SQS
          Properties:
            Queue: !GetAtt Events.Arn
            Enabled: false
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
            Input: '{"job": "nightly"}'
        Paused:
          Type: Schedule
          Properties: {Schedule: rate(1 hour), State: DISABLED}
        Uploaded:
          Type: S3
          Properties:
            Bucket: !Ref Photos
            Events: [s3:ObjectCreated:*, s3:ObjectRemoved:Delete]
            Filter:
              S3Key:
                Rules: [{Name: prefix, Value: raw/}, {Name: suffix, Value: .png}]
"""


def cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("cfn-lint"), str(template)], capture_output=True, text=True)


def comparable(spec: FunctionSpec) -> dict[str, Any]:
    """A spec as a deploy sees it: one route per method, in any order."""
    data = spec.to_dict()
    data["routes"] = sorted(
        (method, r["path"], r["payload"], r["api"])
        for r in data["routes"]
        for method in r["methods"]
    )
    for key in ("queues", "schedules", "uploads"):
        data[key] = sorted(data[key], key=json.dumps)
    return data


def redrive_target(resources: Resources) -> dict[str, dict[str, Any]]:
    """Queue attributes with each redrive policy's ARN reduced to the queue's name."""
    result: dict[str, dict[str, Any]] = {}
    for name, attributes in resources.queues.items():
        result[name] = dict(attributes)
        if "RedrivePolicy" in attributes:
            policy = json.loads(attributes["RedrivePolicy"])
            policy["deadLetterTargetArn"] = policy["deadLetterTargetArn"].rsplit(":", 1)[-1]
            result[name]["RedrivePolicy"] = policy
    return result


def loaded(app: str | None = None, template: str | None = None) -> Any:
    models: list[Any] = []

    async def load() -> None:
        models.append(await load_app(resolve_target(app, template)))

    run(load)
    return models[0]


def test_cfn_lint_finds_no_error_in_the_export_of_every_app(tmp_path: Path) -> None:
    for app in all_apps(tmp_path):
        out = tmp_path / "sam" / app.name / "template.yaml"
        done = skylift("export", "sam", str(app), "--out", str(out))
        assert done.returncode == 0, done.stderr
        linted = cfn_lint(out)
        assert linted.returncode == 0, f"{app}:\n{linted.stdout}{linted.stderr}"


def test_cfn_lint_is_really_linting(tmp_path: Path) -> None:
    bad = tmp_path / "template.yaml"
    bad.write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {Handler: app.handler, Runtime: python3.11, CodeUri: ., Timeout: 0}\n"
    )
    assert cfn_lint(bad).returncode & 2  # 2: an error


def test_a_decorator_app_exports_to_a_template_that_loads_back_the_same(tmp_path: Path) -> None:
    app = write_app(tmp_path / "shop", SHOP)
    out = tmp_path / "deploy" / "template.yaml"
    done = skylift("export", "sam", str(app), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "add skylift to" in done.stderr  # the handlers import it, on Lambda too
    model = loaded(str(app))
    specs, resources = sam.load(out)
    assert sorted(map(comparable, specs), key=lambda s: s["name"]) == sorted(
        map(comparable, model.specs), key=lambda s: s["name"]
    )
    assert redrive_target(resources) == redrive_target(model.resources)
    assert set(resources.buckets) == set(model.resources.buckets)


def test_a_template_app_round_trips_to_an_equivalent_template(tmp_path: Path) -> None:
    source = tmp_path / "app"
    (source / "src").mkdir(parents=True)
    (source / "src" / "handlers.py").write_text(
        textwrap.dedent(
            """
            def api(event, context):
                return {"statusCode": 200, "body": "ok"}

            def worker(event, context):
                return None
            """
        )
    )
    (source / "template.yaml").write_text(TEMPLATE)
    out = tmp_path / "exported" / "template.yaml"
    done = skylift("export", "sam", "--template", str(source / "template.yaml"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert cfn_lint(out).returncode == 0, cfn_lint(out).stdout
    original_specs, original_resources = sam.load(source / "template.yaml")
    specs, resources = sam.load(out)
    assert sorted(map(comparable, specs), key=lambda s: s["name"]) == sorted(
        map(comparable, original_specs), key=lambda s: s["name"]
    )
    assert resources.queues == original_resources.queues
    assert resources.buckets == original_resources.buckets
    # The export of the export is the same file: nothing drifts.
    again = tmp_path / "again" / "template.yaml"
    done = skylift("export", "sam", "--template", str(out), "--out", str(again), "--name", "app")
    assert done.returncode == 0, done.stderr
    assert again.read_text() == out.read_text()


def test_export_never_overwrites_the_template_it_reads(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    template = tmp_path / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {Handler: app.handler, Runtime: python3.11, CodeUri: .}\n"
    )
    before = template.read_text()
    done = skylift("export", "sam", "--template", str(template))
    assert done.returncode == 2 and "is the template being exported" in done.stderr
    assert template.read_text() == before


def test_a_function_lambda_cannot_run_is_refused_by_name(tmp_path: Path) -> None:
    app = write_app(
        tmp_path / "app",
        """
        from skylift import App
        app = App()

        @app.function(runtime_command=["./server"])
        def native(event, context): ...
        """,
    )
    out = tmp_path / "template.yaml"
    done = skylift("export", "sam", str(app), "--out", str(out))
    assert done.returncode == 2
    assert "function 'native' runs its own process (runtime_command)" in done.stderr
    assert not out.exists()
