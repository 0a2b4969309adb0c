"""Authorizers whose answer depends on the token, as the tests need."""

calls = 0


def _policy(effect, resource, principal, context):
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


def token(event, context):
    global calls
    calls += 1
    word = event["authorizationToken"].split()[1]
    if word == "unauthorized":
        raise Exception("Unauthorized")
    if word == "broken":
        return {"policy": "none"}
    # Every GET of the API, as real authorizers allow: a wildcard over the method ARN.
    api, _stage, _method, *_ = event["methodArn"].split("/")
    effect = "Deny" if word == "deny" else "Allow"
    extra = {"user": word, "calls": calls, "admin": True}
    return _policy(effect, f"{api}/*/GET/*", f"user-{word}", extra)


def request(event, context):
    user = event["queryStringParameters"]["user"]
    effect = "Allow" if user == "alice" else "Deny"
    return _policy(effect, event["methodArn"], user, {"path": event["path"]})


def simple(event, context):
    allowed = event["identitySource"] == ["secret"]
    return {"isAuthorized": allowed, "context": {"who": "http-user", "route": event["routeKey"]}}


def policy(event, context):
    """An HTTP API authorizer with payload 1.0, answering with an IAM policy."""
    effect = "Allow" if event["identitySource"] == "ok" else "Deny"
    shape = f"{event['version']} {event['type']} {event['authorizationToken']}"
    return _policy(effect, event["methodArn"], "http-policy", {"shape": shape})
