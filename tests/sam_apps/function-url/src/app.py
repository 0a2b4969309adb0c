import json


def echo(event, context):
    """The event it was given, and a header CORS exposes."""
    return {
        "statusCode": 200,
        "headers": {"x-answer": "42", "access-control-allow-origin": "https://evil.example"},
        "body": json.dumps(event),
    }


def plain(event, context):
    """Not a response object: Lambda sends it as the JSON body with 200."""
    return ["plain", event["rawPath"]]
