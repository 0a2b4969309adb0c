"""A test app for logs and metrics: quick, failing, slow, JSON-logging and queue functions."""

import time

from skylift import App

app = App("observed")
app.declare_queue("backlog")


@app.http("/hello", methods=["GET"])
def hello(event, context):
    print(f"hello from {context.aws_request_id}")
    return {"statusCode": 200, "body": context.aws_request_id}


@app.http("/boom", methods=["GET"])
def boom(event, context):
    print("about to fail")
    raise ValueError("boom")


@app.http("/slow", methods=["GET"], timeout=1)
def slow(event, context):
    print("sleeping past the timeout")
    time.sleep(5)


@app.http("/structured", methods=["GET"], log_format="JSON")
def structured(event, context):
    import logging

    logging.getLogger().warning("structured hello")
    return {"statusCode": 200, "body": context.aws_request_id}


@app.http("/wait", methods=["GET"])
def wait(event, context):
    time.sleep(0.5)
    print("waited")
    return {"statusCode": 200, "body": context.aws_request_id}


@app.http("/single", methods=["GET"], max_concurrency=1)
def single(event, context):
    time.sleep(1)
    return {"statusCode": 200, "body": "single"}
