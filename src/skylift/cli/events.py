"""`skylift events generate`: sample events in AWS's shapes, like `sam local generate-event`."""

from __future__ import annotations

import click
import orjson

from skylift.cli.common import fail

TYPES = "apigateway rest|http, lambda-url, sqs, s3 put|delete, schedule"


@click.group()
def events() -> None:
    """Sample events for `skylift invoke -e` and for tests."""


@events.command()
@click.argument("service")
@click.argument("kind", required=False)
@click.option("--method", default="GET", show_default=True, help="HTTP method (apigateway, url).")
@click.option("--path", default="/", show_default=True, help="Path and query string (HTTP).")
@click.option("--resource", default=None, help="Route template, e.g. /items/{id} (apigateway).")
@click.option("--body", default=None, help="HTTP body, or the SQS message body.")
@click.option(
    "--header", "headers", multiple=True, metavar="NAME:VALUE", help="An HTTP header; repeatable."
)
@click.option("--bucket", default="example-bucket", show_default=True, help="S3 bucket.")
@click.option("--key", default="test/key", show_default=True, help="S3 object key.")
@click.option("--size", default=1024, show_default=True, help="S3 object size in bytes.")
@click.option("--queue", default="example-queue", show_default=True, help="SQS queue name.")
@click.option("--rule", default="example-schedule", show_default=True, help="Schedule name.")
@click.option("--region", default=None, help="Region in ARNs. Default: AWS_REGION or us-east-1.")
def generate(
    service: str,
    kind: str | None,
    method: str,
    path: str,
    resource: str | None,
    body: str | None,
    headers: tuple[str, ...],
    bucket: str,
    key: str,
    size: int,
    queue: str,
    rule: str,
    region: str | None,
) -> None:
    """Print a sample SERVICE [KIND] event as JSON.

    \b
    SERVICE [KIND]: apigateway rest|http, lambda-url, sqs, s3 put|delete, schedule.
    Example: skylift events generate apigateway http --method POST --path /items --body '{}'
    """
    from skylift.account import region as default_region
    from skylift.events import samples

    parsed: dict[str, str] = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            fail(f"--header {header!r} is not NAME:VALUE, e.g. --header 'X-Trace: 1'")
        parsed[name.strip()] = value.strip()
    options = samples.Options(
        region=region or default_region(),
        method=method,
        path=path,
        resource=resource,
        body=body,
        headers=parsed,
        bucket=bucket,
        key=key,
        size=size,
        queue=queue,
        rule=rule,
    )
    try:
        event = samples.build(service, kind, options)
    except ValueError as exc:
        fail(str(exc))
    click.echo(orjson.dumps(event, option=orjson.OPT_INDENT_2).decode())


COMMANDS = [events]
