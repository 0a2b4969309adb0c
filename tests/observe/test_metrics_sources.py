"""What `/metrics` says of where invocations came from (`trigger`), and the metrics a
handler prints with aws-lambda-powertools (CloudWatch's Embedded Metric Format)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from observe_support import Served, eventually

from observe.test_metrics import Samples, scrape, value
from skylift.testing import ServerLog, serve

CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
TOTAL = "skylift_invocations_total"

APP = """
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit
    from skylift import App

    app = App("sources")
    app.declare_queue("jobs")
    metrics = Metrics(namespace="ShopFront", service="orders")


    @app.http("/web", methods=["GET"])
    def web(event, context):
        return {"statusCode": 200, "body": "ok"}


    @app.queue("jobs")
    def worker(event, context):
        return {}


    @app.schedule("rate(1 minute)")
    def tick(event, context):
        return {}


    @app.upload("photos")
    def thumb(event, context):
        return {}


    @app.function()
    def plain(event, context):
        return {}


    @app.http("/order", methods=["GET"])
    @metrics.log_metrics
    def order(event, context):
        query = event["queryStringParameters"]
        metrics.add_dimension(name="color", value=query["color"])
        metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
        for price in query["prices"].split(","):
            metrics.add_metric(name="BasketValue", unit=MetricUnit.Count, value=float(price))
        return {"statusCode": 200, "body": "ordered"}


    @app.http("/fake", methods=["GET"])
    def fake(event, context):
        print('{"_aws": {"Timestamp": 1, "CloudWatchMetrics": "all of them"}, "n": 1}')
        return {"statusCode": 200, "body": "printed"}
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, ServerLog]]:
    app = tmp_path_factory.mktemp("sources")
    (app / "app.py").write_text(textwrap.dedent(APP))
    log = ServerLog()
    # 60x: the rate(1 minute) schedule fires every second.
    with serve(str(app), log=log, options=["--quiet", "--schedule-speed", "60"]) as url:
        yield Served(url, Path(app)), log


def test_each_invocation_is_counted_under_what_invoked_it(
    sources: tuple[Served, ServerLog],
) -> None:
    served, _ = sources
    before = scrape(served)
    # Every trigger a function declares is there before its first invocation.
    for function, trigger in (("worker", "sqs"), ("thumb", "s3"), ("plain", "invoke")):
        labels = {"function": function, "trigger": trigger, "outcome": "error"}
        assert (TOTAL, frozenset(labels.items())) in before
    served.get("/web")
    served.get("/web")
    lam = boto3.client("lambda", endpoint_url=served.url, **CLIENT)
    lam.invoke(FunctionName="plain", Payload=b"{}")
    lam.invoke(FunctionName="plain", Payload=b"{}", InvocationType="Event")
    sqs = boto3.client("sqs", endpoint_url=served.url, **CLIENT)
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="jobs")["QueueUrl"], MessageBody="x")
    s3 = boto3.client("s3", endpoint_url=served.url, **CLIENT)
    s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow")

    def counted(function: str, trigger: str, samples: Samples) -> float:
        found = value(samples, TOTAL, function=function, trigger=trigger, outcome="success")
        return found - value(before, TOTAL, function=function, trigger=trigger, outcome="success")

    def all_counted() -> Samples | None:
        after = scrape(served)
        expected = [
            ("web", "api", 2),
            ("plain", "invoke", 1),
            ("plain", "event", 1),
            ("worker", "sqs", 1),
            ("thumb", "s3", 1),
        ]
        if all(counted(f, t, after) == n for f, t, n in expected):
            return after if counted("tick", "schedule", after) >= 1 else None
        return None

    after = eventually(all_counted, timeout=20)
    # Nothing was counted under a trigger that did not invoke it.
    assert counted("web", "invoke", after) == 0
    assert counted("plain", "api", after) == 0


def test_powertools_metrics_become_prometheus_summaries(
    sources: tuple[Served, ServerLog],
) -> None:
    served, _ = sources
    before = scrape(served)
    for color, prices in (("red", "5,7"), ("red", "1"), ("blue", "10")):
        assert served.get(f"/order?color={color}&prices={prices}").status_code == 200

    def of(name: str, color: str, samples: Samples) -> float:
        labels = {"function": "order", "service": "orders", "color": color}
        return value(samples, name, **labels) - value(before, name, **labels)

    def arrived() -> Samples | None:
        samples = scrape(served)
        return samples if of("shop_front_orders_placed_count", "blue", samples) else None

    after = eventually(arrived)
    assert of("shop_front_orders_placed_count", "red", after) == 2
    assert of("shop_front_orders_placed_sum", "red", after) == 2
    assert of("shop_front_basket_value_count", "red", after) == 3  # 5 and 7, then 1
    assert of("shop_front_basket_value_sum", "red", after) == 13
    assert of("shop_front_basket_value_sum", "blue", after) == 10


def test_a_line_that_is_no_emf_document_stays_a_log_line_and_is_said_once(
    sources: tuple[Served, ServerLog],
) -> None:
    served, log = sources
    for _ in range(3):
        assert served.get("/fake").status_code == 200
    said = eventually(
        lambda: [line for line in log.lines if "no Embedded Metric Format document" in line]
    )
    assert len(said) == 1 and "fake printed" in said[0], said
    assert '"_aws.CloudWatchMetrics" is not an array' in said[0]
    assert not [name for name, _ in scrape(served) if name.startswith("n_") or name == "n"]
