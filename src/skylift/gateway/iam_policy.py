"""A Lambda authorizer's IAM policy, evaluated against one request's method ARN.

As IAM evaluates it: an explicit Deny that matches wins, then an Allow that matches;
no match at all is an implicit deny. `*` in a Resource or Action matches any run of
characters (slashes too), `?` any one character, case-sensitively as in ARNs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

Decision = Literal["allow", "explicit_deny", "implicit_deny"]
_ACTION = "execute-api:Invoke"


class PolicyError(ValueError):
    """Raised when an authorizer's policyDocument is not a policy API Gateway accepts."""


@lru_cache(maxsize=1024)
def _pattern(wildcard: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in wildcard)
    return re.compile(regex + r"\Z", re.DOTALL)


def matches(wildcard: str, value: str) -> bool:
    """Whether an IAM `wildcard` (`*`, `?`) matches `value` as a whole.

    >>> matches("arn:aws:execute-api:*:*:a/Prod/GET/*", "arn:aws:execute-api:r:1:a/Prod/GET/b/c")
    True
    """
    return _pattern(wildcard).match(value) is not None


def _strings(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise PolicyError(f"{what} must be a string or a list of strings, got {value!r}")


def evaluate(policy: Any, method_arn: str) -> Decision:
    """Allow or deny `method_arn` by `policy` (a policyDocument); raise PolicyError."""
    if not isinstance(policy, dict):
        raise PolicyError(f"policyDocument must be an object, got {policy!r}")
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError("policyDocument.Statement must be a list of statements")
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            raise PolicyError(f"each Statement must be an object, got {statement!r}")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"Statement Effect must be Allow or Deny, got {effect!r}")
        actions = _strings(statement.get("Action"), "Statement Action")
        resources = _strings(statement.get("Resource"), "Statement Resource")
        if not any(matches(a.lower(), _ACTION.lower()) for a in actions):
            continue  # actions are case-insensitive in IAM
        if not any(matches(r, method_arn) for r in resources):
            continue
        if effect == "Deny":
            return "explicit_deny"
        allowed = True
    return "allow" if allowed else "implicit_deny"
