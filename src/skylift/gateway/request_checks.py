"""REST request validation: required request parameters, and a JSON body against its
model's schema (draft-04, as API Gateway validates models).

API Gateway's answers: 400 `{"message": "Missing required request parameters: [q]"}`
and 400 `{"message": "Invalid request body"}`; what was wrong goes to skylift's log.
"""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from typing import Any

import orjson

from skylift.events import _common
from skylift.events.http import HttpRequest, HttpResponse, RouteMatch
from skylift.route_access import RequestCheck

logger = logging.getLogger("skylift.gateway")
INVALID_BODY = b'{"message": "Invalid request body"}'


@lru_cache(maxsize=256)
def _validator(schema: str) -> Any:
    import jsonschema  # 8.5 MiB: only when a route validates a body

    return jsonschema.Draft4Validator(orjson.loads(schema))


def _present(expression: str, request: HttpRequest, match: RouteMatch) -> bool:
    _, _, rest = expression.partition("method.request.")
    where, _, name = rest.partition(".")
    if where == "header":
        return any(k.lower() == name.lower() for k, _ in request.headers)
    if where == "querystring":
        return name in _common.parse_query(request.raw_query)
    if where == "path":
        return name in match.path_parameters
    return True


def check(rule: RequestCheck, request: HttpRequest, match: RouteMatch) -> HttpResponse | None:
    """The 400 refusing `request`, or None when it passes."""
    missing = [
        expression.rsplit(".", 1)[1]
        for expression in rule.required
        if not _present(expression, request, match)
    ]
    if missing:
        body = (
            b'{"message": "Missing required request parameters: [%s]"}'
            % ", ".join(missing).encode()
        )
        return _common.json_response(400, body)
    if rule.schema is None:
        return None
    try:
        document = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError:
        logger.info("request body refused: it is not JSON (model %s)", rule.model)
        return _common.json_response(400, INVALID_BODY)
    validator = _validator(rule.schema)
    error = sys.modules["jsonschema"].exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        logger.info("request body refused by model %s: %s", rule.model, error.message)
        return _common.json_response(400, INVALID_BODY)
    return None
