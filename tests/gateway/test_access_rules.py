"""The rules behind API Gateway's access checks, each as a user's request would meet it:
IAM policy wildcards, usage-plan throttles and quota windows, and routes' access
surviving the trip to the zygotes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skylift.errors import DeclarationError
from skylift.events.http import HttpRequest
from skylift.gateway.api_keys import FORBIDDEN, ApiKeys
from skylift.gateway.iam_policy import evaluate
from skylift.route_access import ApiKey, RouteAccess, UsagePlan
from skylift.sam import load
from skylift.spec import FunctionSpec

ARN = "arn:aws:execute-api:us-east-1:123456789012:skylift/Prod/GET/items/42"


def policy(*statements: tuple[str, str]) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
            for effect, resource in statements
        ],
    }


@pytest.mark.parametrize(
    ("statements", "decision"),
    [
        ([("Allow", ARN)], "allow"),
        ([("Allow", "arn:aws:execute-api:*:*:skylift/Prod/GET/*")], "allow"),
        ([("Allow", "arn:aws:execute-api:us-east-1:123456789012:skylift/*/*/items/4?")], "allow"),
        ([("Allow", "arn:aws:execute-api:*:*:skylift/Prod/POST/*")], "implicit_deny"),
        (
            [("Allow", "*"), ("Deny", "arn:aws:execute-api:*:*:skylift/*/GET/items/*")],
            "explicit_deny",
        ),
        ([], "implicit_deny"),
    ],
)
def test_a_policy_decides_as_iam_does(statements: list[tuple[str, str]], decision: str) -> None:
    assert evaluate(policy(*statements), ARN) == decision


KEY = "secret-key-value"


def _request(key: str) -> HttpRequest:
    return HttpRequest("GET", "/", "", [("X-Api-Key", key)], b"")


def _keyed(**plan: Any) -> RouteAccess:
    """A route that needs an API key, `KEY`, of a usage plan with these limits."""
    usage = UsagePlan("Plan", (ApiKey("K", "K", KEY),), **plan)
    return RouteAccess("Api", api_key_required=True, usage_plans=(usage,))


def _answer(keys: ApiKeys, access: RouteAccess, key: str = KEY) -> tuple[int, bytes]:
    """(status, body) of the refusal; (200, b"") where the key is admitted."""
    checked = keys.check(access, _request(key))
    if isinstance(checked, ApiKey):
        return 200, b""
    return checked.status, checked.body


def _load_error(folder: Path, template: str) -> str:
    (folder / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (folder / "template.yaml").write_text(template)
    with pytest.raises(DeclarationError) as caught:
        load(folder)
    return str(caught.value)


def test_a_plans_throttle_refills_at_its_rate() -> None:
    now = [0.0]
    keys = ApiKeys(monotonic=lambda: now[0])
    access = _keyed(rate=1.0, burst=2)
    assert [_answer(keys, access)[0] for _ in range(3)] == [200, 200, 429]
    now[0] = 1.0  # a second later, one more token
    assert _answer(keys, access)[0] == 200


def test_a_quota_starts_again_in_the_next_window() -> None:
    day = 86400.0
    now = [10 * day]
    keys = ApiKeys(clock=lambda: now[0])
    access = _keyed(quota_limit=1)
    assert _answer(keys, access) == (200, b"")
    assert _answer(keys, access) == (429, b'{"message":"Limit Exceeded"}')
    now[0] += day
    assert _answer(keys, access) == (200, b"")


def test_routes_access_survives_the_trip_to_the_zygotes() -> None:
    app = Path(__file__).parents[1] / "sam_apps" / "api-auth"
    specs, _ = load(app)
    for spec in specs:
        assert FunctionSpec.from_dict(spec.to_dict()) == spec


def test_an_unknown_authorizer_names_what_to_change(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path,
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Events:
        Get:
          Type: Api
          Properties: {Path: /, Method: get, Auth: {Authorizer: Missing}}
""",
    )
    assert "Auth.Authorizer 'Missing' is not among the API's Auth.Authorizers" in error


def test_an_authorizer_outside_the_template_names_what_to_change(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path,
        """
Transform: AWS::Serverless-2016-10-31
Globals:
  Api:
    Auth:
      DefaultAuthorizer: Remote
      Authorizers:
        Remote: {FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:elsewhere"}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Events:
        Get: {Type: Api, Properties: {Path: /, Method: get}}
""",
    )
    assert "Globals.Api authorizer 'Remote': FunctionArn names function 'elsewhere'" in error


def test_a_request_the_quota_refuses_does_not_spend_the_throttle() -> None:
    day = 86400.0
    now = [10 * day]
    keys = ApiKeys(clock=lambda: now[0], monotonic=lambda: 0.0)  # no refill: tokens only spent
    access = _keyed(quota_limit=1, rate=1.0, burst=2)
    assert _answer(keys, access) == (200, b"")
    assert _answer(keys, access) == (429, b'{"message":"Limit Exceeded"}')
    now[0] += day  # a new quota window; the one throttle token left is still there
    assert _answer(keys, access) == (200, b"")


def test_only_the_exact_key_value_is_admitted() -> None:
    keys = ApiKeys()
    access = _keyed()
    for wrong in ("secret-key-valu", "secret-key-value2", "SECRET-KEY-VALUE", "sécret"):
        assert _answer(keys, access, wrong) == (403, FORBIDDEN)
    assert _answer(keys, access) == (200, b"")
