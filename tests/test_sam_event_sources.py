"""A SAM template's queues, buckets and their events, end to end from `skylift up`."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import boto3
from botocore.config import Config

from skylift.testing import serve

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.11
    CodeUri: src/
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: jobs
      VisibilityTimeout: 30
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobsDlq.Arn
        maxReceiveCount: 2
  JobsDlq:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: jobs-dlq
  Inbox:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: inbox
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handlers.work
      Environment:
        Variables:
          JOBS_URL: !Ref Jobs
      Events:
        FromJobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
  Ingest:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handlers.ingest
      Events:
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Inbox
            Events: s3:ObjectCreated:*
            Filter:
              S3Key:
                Rules:
                  - Name: suffix
                    Value: .json
"""

HANDLERS = """
import json, os

LOG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "seen.jsonl")


def record(name, event):
    with open(LOG, "a") as f:
        f.write(json.dumps({"fn": name, "event": event, "env": os.environ.get("JOBS_URL")}) + "\\n")


def work(event, context):
    record("work", event)
    return {"batchItemFailures": []}


def ingest(event, context):
    record("ingest", event)
"""


def boto(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}),
    )


def wait_seen(directory: Path, fn: str) -> dict:
    deadline = time.monotonic() + 10
    path = directory / "seen.jsonl"
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                if entry["fn"] == fn:
                    return entry
        time.sleep(0.05)
    raise AssertionError(f"{fn} never ran")


def test_template_queues_and_buckets_fire_their_functions(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    (tmp_path / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    # The handlers record events in a file beside their code: no sandbox (it is read-only).
    with serve(str(tmp_path), options=["--sandbox", "off"]) as url:
        sqs, s3 = boto("sqs", url), boto("s3", url)
        assert sorted(sqs.list_queues()["QueueUrls"]) == [
            f"{url}/123456789012/jobs",
            f"{url}/123456789012/jobs-dlq",
        ]
        attributes = sqs.get_queue_attributes(
            QueueUrl=f"{url}/123456789012/jobs", AttributeNames=["All"]
        )["Attributes"]
        assert attributes["VisibilityTimeout"] == "30"
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:jobs-dlq",
            "maxReceiveCount": 2,
        }
        sqs.send_message(QueueUrl=f"{url}/123456789012/jobs", MessageBody="job-1")
        work = wait_seen(tmp_path, "work")
        assert work["event"]["Records"][0]["body"] == "job-1"
        assert work["env"] == "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"

        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["inbox"]
        s3.put_object(Bucket="inbox", Key="a.json", Body=b"{}")
        ingest = wait_seen(tmp_path, "ingest")
        assert ingest["event"]["Records"][0]["s3"]["object"]["key"] == "a.json"
