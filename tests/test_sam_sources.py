"""SAM templates with queues, buckets and schedules: real template files in, triggers and
resources (or errors naming the logical id and the fix) out."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest

from skylift.errors import DeclarationError
from skylift.sam import load, load_template
from skylift.schedules.expressions import ScheduleError
from skylift.spec import FunctionSpec, Resources
from skylift.triggers import QueueTrigger, ScheduleTrigger, UploadTrigger

HEADER = """\
    Transform: AWS::Serverless-2016-10-31
    Globals:
      Function:
        Runtime: python3.12
        Handler: app.handler
    Resources:
"""


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    return "eu-west-1"


def load_text(root: Path, resources: str) -> tuple[list[FunctionSpec], Resources]:
    """Write a template (HEADER + `resources`, indented under Resources) and load it."""
    (root / "app.py").write_text("def handler(event, context):\n    return {}\n")
    body = textwrap.indent(textwrap.dedent(resources), "  ")
    (root / "template.yaml").write_text(textwrap.dedent(HEADER) + body)
    return load(root / "template.yaml")


def failure(root: Path, resources: str) -> DeclarationError:
    with pytest.raises(DeclarationError) as caught:
        load_text(root, resources)
    return caught.value


def by_name(specs: list[FunctionSpec]) -> dict[str, FunctionSpec]:
    return {spec.name: spec for spec in specs}


QUEUE_WITH_DLQ = """\
Jobs:
  Type: AWS::SQS::Queue
  Properties:
    VisibilityTimeout: 120
    DelaySeconds: 5
    MessageRetentionPeriod: 86400
    MaximumMessageSize: 2048
    ReceiveMessageWaitTimeSeconds: 20
    RedrivePolicy:
      deadLetterTargetArn: !GetAtt JobsDLQ.Arn
      maxReceiveCount: 3
JobsDLQ:
  Type: AWS::SQS::Queue
  Properties:
    QueueName: jobs-dead-letters
Worker:
  Type: AWS::Serverless::Function
  Properties:
    Events:
      Jobs:
        Type: SQS
        Properties:
          Queue: !GetAtt Jobs.Arn
"""


def test_queue_with_dead_letter_queue_becomes_sqs_attributes(tmp_path: Path) -> None:
    specs, resources = load_text(tmp_path, QUEUE_WITH_DLQ)

    assert resources.queues == {
        "Jobs": {
            "VisibilityTimeout": "120",
            "DelaySeconds": "5",
            "MessageRetentionPeriod": "86400",
            "MaximumMessageSize": "2048",
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": "arn:aws:sqs:eu-west-1:123456789012:jobs-dead-letters",
                    "maxReceiveCount": 3,
                },
                separators=(",", ":"),
            ),
        },
        "jobs-dead-letters": {},
    }
    assert resources.buckets == ()
    assert by_name(specs)["Worker"].queues == (QueueTrigger("Jobs"),)


def test_fifo_queue_without_queue_name_gets_the_fifo_suffix(tmp_path: Path) -> None:
    specs, resources = load_text(
        tmp_path,
        """\
        Orders:
          Type: AWS::SQS::Queue
          Properties:
            FifoQueue: true
            ContentBasedDeduplication: true
            RedrivePolicy: {deadLetterTargetArn: !GetAtt OrdersDLQ.Arn, maxReceiveCount: "5"}
        OrdersDLQ:
          Type: AWS::SQS::Queue
          Properties: {FifoQueue: true}
        Worker:
          Type: AWS::Serverless::Function
          Properties:
            Environment:
              Variables:
                ORDERS_URL: !Ref Orders
                ORDERS_NAME: !GetAtt Orders.QueueName
            Events:
              Orders: {Type: SQS, Properties: {Queue: !GetAtt Orders.Arn, BatchSize: 10}}
        """,
    )
    worker = only(specs)

    dlq_arn = "arn:aws:sqs:eu-west-1:123456789012:OrdersDLQ.fifo"
    assert resources.queues == {
        "Orders.fifo": {
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":5}}',
        },
        "OrdersDLQ.fifo": {"FifoQueue": "true"},
    }
    assert worker.environment == {
        "ORDERS_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/Orders.fifo",
        "ORDERS_NAME": "Orders.fifo",
    }
    assert worker.queues == (QueueTrigger("Orders.fifo", batch_size=10),)


def test_sqs_event_options_become_the_queue_trigger(tmp_path: Path) -> None:
    specs, _ = load_text(
        tmp_path,
        """\
        Jobs:
          Type: AWS::SQS::Queue
        Worker:
          Type: AWS::Serverless::Function
          Properties:
            Events:
              Jobs:
                Type: SQS
                Properties:
                  Queue: !GetAtt Jobs.Arn
                  BatchSize: 100
                  MaximumBatchingWindowInSeconds: 5
                  FunctionResponseTypes: [ReportBatchItemFailures]
                  ScalingConfig: {MaximumConcurrency: 4}
                  Enabled: false
        """,
    )

    assert only(specs).queues == (
        QueueTrigger(
            "Jobs",
            batch_size=100,
            max_batching_window=5,
            max_concurrency=4,
            report_batch_item_failures=True,
            enabled=False,
        ),
    )


def test_sqs_event_on_an_undeclared_queue_creates_it(tmp_path: Path) -> None:
    specs, resources = load_text(
        tmp_path,
        """\
        Worker:
          Type: AWS::Serverless::Function
          Properties:
            Events:
              Shared:
                Type: SQS
                Properties:
                  Queue: !Sub "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:shared-jobs"
        """,
    )

    assert only(specs).queues == (QueueTrigger("shared-jobs"),)
    assert resources.queues == {"shared-jobs": {}}


def test_bucket_with_s3_event_and_key_filter(tmp_path: Path) -> None:
    specs, resources = load_text(
        tmp_path,
        """\
        Uploads:
          Type: AWS::S3::Bucket
        Archive:
          Type: AWS::S3::Bucket
          Properties: {BucketName: !Sub "archive-${AWS::Region}"}
        Thumbnailer:
          Type: AWS::Serverless::Function
          Properties:
            Environment:
              Variables:
                BUCKET: !Ref Uploads
                BUCKET_ARN: !GetAtt Uploads.Arn
                ARCHIVE_HOST: !GetAtt Archive.DomainName
            Events:
              Photos:
                Type: S3
                Properties:
                  Bucket: !Ref Uploads
                  Events: s3:ObjectCreated:*
                  Filter:
                    S3Key:
                      Rules:
                        - {Name: Prefix, Value: photos/}
                        - {Name: suffix, Value: .jpg}
              Removed:
                Type: S3
                Properties:
                  Bucket: !Ref Archive
                  Events: [s3:ObjectRemoved:Delete, s3:ObjectRemoved:DeleteMarkerCreated]
        """,
    )
    spec = only(specs)

    assert resources.buckets == ("uploads", "archive-eu-west-1")
    assert resources.queues == {}
    assert spec.uploads == (
        UploadTrigger("uploads", ("s3:ObjectCreated:*",), prefix="photos/", suffix=".jpg"),
        UploadTrigger(
            "archive-eu-west-1", ("s3:ObjectRemoved:Delete", "s3:ObjectRemoved:DeleteMarkerCreated")
        ),
    )
    assert spec.environment == {
        "BUCKET": "uploads",
        "BUCKET_ARN": "arn:aws:s3:::uploads",
        "ARCHIVE_HOST": "archive-eu-west-1.s3.amazonaws.com",
    }


def test_schedules_with_input_and_disabled(tmp_path: Path) -> None:
    specs, _ = load_text(
        tmp_path,
        """\
        Nightly:
          Type: AWS::Serverless::Function
          Properties:
            Events:
              Report:
                Type: Schedule
                Properties:
                  Schedule: cron(0 2 * * ? *)
                  Input: '{"report": "daily"}'
                  Name: nightly-report
                  Description: ignored locally
              Paused:
                Type: Schedule
                Properties: {Schedule: rate(5 minutes), Enabled: false}
              Stopped:
                Type: Schedule
                Properties: {Schedule: rate(1 hour), State: DISABLED}
        """,
    )

    assert only(specs).schedules == (
        ScheduleTrigger("cron(0 2 * * ? *)", '{"report": "daily"}'),
        ScheduleTrigger("rate(5 minutes)", enabled=False),
        ScheduleTrigger("rate(1 hour)", enabled=False),
    )


def test_function_arn_and_region_follow_the_environment(tmp_path: Path) -> None:
    specs, _ = load_text(
        tmp_path,
        """\
        Reader:
          Type: AWS::Serverless::Function
          Properties:
            FunctionName: reader-fn
        Caller:
          Type: AWS::Serverless::Function
          Properties:
            Environment:
              Variables:
                TARGET: !GetAtt Reader.Arn
                WHERE: !Ref AWS::Region
        """,
    )

    assert by_name(specs)["Caller"].environment == {
        "TARGET": "arn:aws:lambda:eu-west-1:123456789012:function:reader-fn",
        "WHERE": "eu-west-1",
    }


def test_getatt_of_a_resource_skylift_does_not_create_is_a_stand_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="skylift.sam"):
        specs, _ = load_text(
            tmp_path,
            """\
            Table:
              Type: AWS::DynamoDB::Table
            Reader:
              Type: AWS::Serverless::Function
              Properties:
                Environment:
                  Variables:
                    TABLE: !Ref Table
                    TABLE_STREAM: !Sub "${Table.StreamArn}"
            """,
        )

    stand_in = "arn:aws:skylift:eu-west-1:123456789012:Table/StreamArn"
    assert only(specs).environment == {"TABLE": "Table", "TABLE_STREAM": stand_in}
    record, notes = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("function 'Reader': environment variable TABLE_STREAM ")
    assert "resource 'Table' (AWS::DynamoDB::Table): not created" in notes.getMessage()
    assert "Fn::GetAtt Table.StreamArn" in message
    assert "AWS::DynamoDB::Table" in message
    assert f"stand-in value {stand_in!r}" in message


def test_a_queue_name_may_use_a_queue_declared_after_it(tmp_path: Path) -> None:
    _, resources = load_text(
        tmp_path,
        """\
        Retry:
          Type: AWS::SQS::Queue
          Properties: {QueueName: !Sub "${Main.QueueName}-retry"}
        Main:
          Type: AWS::SQS::Queue
        Worker:
          Type: AWS::Serverless::Function
        """,
    )

    assert list(resources.queues) == ["Main-retry", "Main"]


def test_load_template_returns_the_specs_of_load(tmp_path: Path) -> None:
    specs, _ = load_text(tmp_path, QUEUE_WITH_DLQ)

    assert load_template(tmp_path / "template.yaml") == specs


# --- errors ------------------------------------------------------------------------------

WORKER_ON = """\
Worker:
  Type: AWS::Serverless::Function
  Properties:
    Events:
      Trigger:
        {event}
"""

ERRORS = {
    "plain-name Queue": (
        "Type: SQS\n        Properties: {Queue: jobs}",
        ["event 'Trigger': Queue 'jobs' is not an SQS queue ARN", "use !GetAtt MyQueue.Arn"],
    ),
    "FilterCriteria": (
        "Type: SQS\n        Properties: {Queue: 'arn:aws:sqs:us-east-1:1:q', FilterCriteria: {}}",
        ["FilterCriteria is not supported yet", "remove it"],
    ),
    "bad FunctionResponseTypes": (
        "Type: SQS\n        Properties: {Queue: 'arn:aws:sqs:us-east-1:1:q', "
        "FunctionResponseTypes: [Everything]}",
        ["FunctionResponseTypes ['Everything'] is invalid", "[ReportBatchItemFailures]"],
    ),
    "batch window too short for batch": (
        "Type: SQS\n        Properties: {Queue: 'arn:aws:sqs:us-east-1:1:q', BatchSize: 50}",
        ["event 'Trigger': queue trigger on 'q': a batch_size over 10 needs max_batching_window"],
    ),
    "S3 event on a bucket not in the template": (
        "Type: S3\n        Properties: {Bucket: somebody-elses-bucket, Events: s3:ObjectCreated:*}",
        [
            "event 'Trigger': Bucket 'somebody-elses-bucket' is not declared in this template",
            "declare it as an AWS::S3::Bucket resource and set Bucket: !Ref",
        ],
    ),
    "Schedule Input not JSON": (
        "Type: Schedule\n        Properties: {Schedule: rate(1 day), Input: not json}",
        ["event 'Trigger': Input 'not json' is not valid JSON", "write JSON text"],
    ),
    "Schedule with Enabled and State": (
        "Type: Schedule\n        Properties:\n"
        "          {Schedule: rate(1 day), Enabled: true, State: ENABLED}",
        ["set Enabled or State, not both"],
    ),
}


@pytest.mark.parametrize(("event", "fragments"), ERRORS.values(), ids=ERRORS.keys())
def test_event_errors_name_the_function_and_the_fix(
    tmp_path: Path, event: str, fragments: list[str]
) -> None:
    error = failure(tmp_path, WORKER_ON.format(event=event))

    assert error.function == "Worker"
    assert str(error).startswith("function 'Worker': ")
    for fragment in fragments:
        assert fragment in str(error)


def test_invalid_schedule_expression_is_a_schedule_error(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError) as caught:
        load_text(
            tmp_path,
            WORKER_ON.format(
                event="Type: Schedule\n        Properties: {Schedule: rate(5 MINUTES)}"
            ),
        )

    assert caught.value.function == "Worker"
    assert caught.value.expression == "rate(5 MINUTES)"
    assert str(caught.value).startswith(
        "function 'Worker': Parameter ScheduleExpression is not valid."
    )
    assert "(event 'Trigger')" in str(caught.value)


RESOURCE_ERRORS = {
    "attribute out of range": (
        "Jobs:\n  Type: AWS::SQS::Queue\n  Properties: {VisibilityTimeout: 50000}",
        ["queue 'Jobs': ", "VisibilityTimeout", "from 0 to 43200"],
    ),
    "dead-letter target not a queue ARN": (
        "Jobs:\n  Type: AWS::SQS::Queue\n  Properties:\n    RedrivePolicy: "
        "{deadLetterTargetArn: jobs-dlq, maxReceiveCount: 3}",
        [
            "queue 'Jobs': RedrivePolicy deadLetterTargetArn 'jobs-dlq' is not an SQS queue ARN",
            "use !GetAtt MyDeadLetterQueue.Arn",
        ],
    ),
    "FIFO QueueName without suffix": (
        "Jobs:\n  Type: AWS::SQS::Queue\n  Properties: {FifoQueue: true, QueueName: jobs}",
        ["queue 'Jobs': ", "must end with the .fifo suffix", "fix QueueName"],
    ),
    "bucket logical id too short for a name": (
        "B1:\n  Type: AWS::S3::Bucket",
        ["bucket 'B1': bucket name 'b1' is invalid", "set BucketName to a valid name"],
    ),
    "two queues with one name": (
        "A:\n  Type: AWS::SQS::Queue\n  Properties: {QueueName: jobs}\n"
        "B:\n  Type: AWS::SQS::Queue\n  Properties: {QueueName: jobs}",
        ["queue 'B': name 'jobs' is also used by queue 'A'", "own QueueName"],
    ),
}


@pytest.mark.parametrize(
    ("resource", "fragments"), RESOURCE_ERRORS.values(), ids=RESOURCE_ERRORS.keys()
)
def test_resource_errors_name_the_resource_and_the_fix(
    tmp_path: Path, resource: str, fragments: list[str]
) -> None:
    error = failure(tmp_path, resource + "\nWorker:\n  Type: AWS::Serverless::Function\n")

    for fragment in fragments:
        assert fragment in str(error)


def only(specs: list[FunctionSpec]) -> FunctionSpec:
    assert len(specs) == 1
    return specs[0]


def test_event_invoke_config_and_dead_letter_queue(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent("""
        Resources:
          Failed:
            Type: AWS::SQS::Queue
            Properties: {QueueName: failed}
          Dead:
            Type: AWS::SQS::Queue
            Properties: {QueueName: dead}
          Audit:
            Type: AWS::Serverless::Function
            Properties: {Runtime: python3.11, Handler: app.handler}
          Worker:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              Handler: app.handler
              DeadLetterQueue:
                Type: SQS
                TargetArn: !GetAtt Dead.Arn
              EventInvokeConfig:
                MaximumRetryAttempts: 1
                MaximumEventAgeInSeconds: 120
                DestinationConfig:
                  OnSuccess:
                    Type: Lambda
                    Destination: !GetAtt Audit.Arn
                  OnFailure:
                    Type: SQS
                    Destination: !GetAtt Failed.Arn
    """)
    )
    specs = {s.name: s for s in load_template(tmp_path / "template.yaml")}
    config = specs["Worker"].async_config
    assert (config.max_retries, config.max_event_age) == (1, 120)
    assert (str(config.on_success), str(config.on_failure)) == ("function:Audit", "queue:failed")
    assert config.dead_letter_queue == "dead"


def test_unsupported_destination_types_are_refused(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent("""
        Resources:
          Worker:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              Handler: app.handler
              EventInvokeConfig:
                DestinationConfig:
                  OnFailure: {Type: SNS, Destination: "arn:aws:sns:us-east-1:123456789012:t"}
    """)
    )
    with pytest.raises(DeclarationError, match=r"function 'Worker'.*type 'SNS' is not supported"):
        load_template(tmp_path / "template.yaml")


def test_provisioned_concurrency_keeps_instances_warm(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent("""
        Resources:
          Warm:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.11
              Handler: app.handler
              AutoPublishAlias: live
              ProvisionedConcurrencyConfig:
                ProvisionedConcurrentExecutions: 3
    """)
    )
    (spec,) = load_template(tmp_path / "template.yaml")
    assert spec.min_instances == 3
