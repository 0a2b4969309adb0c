"""Request bodies checked against a decorator's pydantic `request_model`.

A body that does not match never reaches the handler: the client gets a 400 with
pydantic's error list, as API Gateway's request validation answers before Lambda runs.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from typing import Any

from skylift.errors import DeclarationError

Handler = Callable[[dict[str, Any], Any], Any]


def check_model(model: Any, function: str | None) -> None:
    """DeclarationError unless `model` is a pydantic model class."""
    if model is not None and not hasattr(model, "model_validate_json"):
        raise DeclarationError(
            f"{model!r} is not a pydantic model: pass a subclass of pydantic.BaseModel",
            function=function,
        )


def validating(handler: Handler, model: Any) -> Handler:
    """`handler`, behind a check of the event's body against the pydantic `model`."""
    from pydantic import ValidationError  # only apps that declare models need pydantic

    @functools.wraps(handler)
    def check(event: dict[str, Any], context: Any) -> Any:
        if not isinstance(event, dict) or "requestContext" not in event:
            return handler(event, context)  # not from the gateway: an Invoke's own payload
        body = event.get("body") or ""
        if body and event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            model.model_validate_json(body or "null")
        except ValidationError as exc:
            return rejected(model.__name__, exc)
        return handler(event, context)

    return check


def rejected(name: str, exc: Any) -> dict[str, Any]:
    """The 400 response for a body that failed the model `name`."""
    detail = json.loads(exc.json(include_url=False, include_input=False))
    first = detail[0] if detail else {}
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    message = f"the body does not match {name}: {where}: {first.get('msg', 'invalid')}"
    return {
        "statusCode": 400,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": message, "detail": detail}),
    }
