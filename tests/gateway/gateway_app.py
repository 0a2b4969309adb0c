"""A test app for the HTTP gateway: echoes events, returns every response shape."""

import base64
import json
import socket
import time

from skylift import App

app = App("gateway-probe")
PNG = bytes(range(256))


@app.http("/v2/{proxy+}", methods=["ANY"])
def echo_v2(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(event),
    }


@app.http("/v1/{proxy+}", methods=["ANY"], payload="1.0")
def echo_v1(event, context):
    return {"statusCode": 200, "body": json.dumps(event)}


@app.http("/items/{id}", methods=["GET"])
def item(event, context):
    return {"id": event["pathParameters"]["id"]}


@app.http("/items/special", methods=["GET"])
def special(event, context):
    return {"special": True}


@app.http("/plain/{kind}", methods=["GET"])
def plain(event, context):
    kind = event["pathParameters"]["kind"]
    return {"dict": {"hello": "world"}, "list": [1, 2], "str": "hi"}[kind]


@app.http("/binary", methods=["GET"])
def binary(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "image/png"},
        "body": base64.b64encode(PNG).decode(),
        "isBase64Encoded": True,
    }


@app.http("/cookies", methods=["GET"])
def cookies(event, context):
    return {"statusCode": 201, "cookies": ["a=1; Path=/", "b=2"], "body": "ok"}


@app.http("/multi", methods=["GET"], payload="1.0")
def multi(event, context):
    return {"statusCode": 200, "multiValueHeaders": {"X-Many": ["1", "2"]}, "body": "ok"}


@app.http("/fail/v2", methods=["GET"])
def fail_v2(event, context):
    raise RuntimeError("secret internal detail")


@app.http("/fail/v1", methods=["GET"], payload="1.0")
def fail_v1(event, context):
    raise RuntimeError("secret internal detail")


@app.http("/malformed/v1", methods=["GET"], payload="1.0")
def malformed_v1(event, context):
    return "not a proxy response"


@app.http("/malformed/v2", methods=["GET"])
def malformed_v2(event, context):
    return {"statusCode": "two hundred"}


@app.http("/slow/v1", methods=["GET"], payload="1.0", timeout=1)
def slow_v1(event, context):
    time.sleep(5)


@app.http("/slow/v2", methods=["GET"], timeout=1)
def slow_v2(event, context):
    time.sleep(5)


@app.http("/nocontent", methods=["DELETE"])
def nocontent(event, context):
    return {"statusCode": 204, "body": "ignored"}


@app.http("/badheader/{kind}", methods=["GET"])
def badheader(event, context):
    headers = {"value": {"X-Bad": "a\r\nInjected: yes"}, "name": {"Bad Name": "v"}}
    return {"statusCode": 200, "headers": headers[event["pathParameters"]["kind"]], "body": "x"}


@app.http("/busy", methods=["GET"], max_concurrency=1, timeout=60)
def busy(event, context):
    # Holds the function's one instance until the test closes the connection to the
    # port in `?gate=` (the sandbox leaves an instance the loopback).
    port = int(event["queryStringParameters"]["gate"])
    with socket.create_connection(("127.0.0.1", port)) as gate:
        gate.recv(1)
    return {"done": True}


@app.http("/ids", methods=["GET"])
def ids_v2(event, context):
    return {"apigw": event["requestContext"]["requestId"], "lambda": context.aws_request_id}


@app.http("/ids-v1", methods=["GET"], payload="1.0")
def ids_v1(event, context):
    ids = {"apigw": event["requestContext"]["requestId"], "lambda": context.aws_request_id}
    ids["extended"] = event["requestContext"]["extendedRequestId"]
    return {"statusCode": 200, "body": json.dumps(ids)}
