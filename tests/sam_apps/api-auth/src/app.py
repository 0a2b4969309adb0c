import json


def echo(event, context):
    request = event["requestContext"]
    body = {"authorizer": request.get("authorizer")}
    if "identity" in request:
        body["apiKey"] = request["identity"]["apiKey"]
        body["apiKeyId"] = request["identity"]["apiKeyId"]
    return {"statusCode": 200, "body": json.dumps(body)}
