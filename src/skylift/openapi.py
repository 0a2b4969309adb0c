"""OpenAPI 3.1 documents generated from an app's HTTP routes.

Paths, methods and path parameters come from the routes (any app, decorators or SAM);
summaries from the handlers' docstrings, and request and response schemas from the
pydantic models a decorator declares (`@app.http(..., request_model=M)`).

>>> document("housing", [Operation("/predict", "POST", "Predict MEDV.")])["paths"]
{'/predict': {'post': {'operationId': 'post_predict', 'summary': 'Predict MEDV.', ...}}}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skylift.spec import FunctionSpec

_PARAM = re.compile(r"\{([^}+]+)\+?\}")
# What an `ANY` route documents: OpenAPI has no wildcard method.
ANY_METHODS = ("get", "post", "put", "patch", "delete")
VERSION = "3.1.0"


@dataclass(frozen=True)
class Operation:
    """One method on one path, and what documents it."""

    path: str
    method: str
    summary: str = ""
    description: str = ""
    request_model: Any = None  # a pydantic model class
    response_model: Any = None
    extra: Mapping[str, Any] | None = None  # keys added to the operation


def operations(
    specs: Iterable[FunctionSpec],
    docs: Mapping[str, str] | None = None,
    models: Mapping[str, tuple[Any, Any]] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Operation]:
    """The operations of `specs`' routes; `docs` maps a function to its docstring,
    `models` to its (request, response) pydantic models, `extra` to operation keys."""
    found = []
    for spec in specs:
        summary, description = split_doc((docs or {}).get(spec.name, ""))
        request, response = (models or {}).get(spec.name, (None, None))
        for route in spec.routes:
            if route.path == "$default":  # a catch-all: no path to document
                continue
            for method in route.methods:
                more = (extra or {}).get(spec.name)
                found.append(
                    Operation(route.path, method, summary, description, request, response, more)
                )
    return found


def split_doc(doc: str) -> tuple[str, str]:
    """(first line, the rest) of a docstring, dedented."""
    lines = [line.strip() for line in (doc or "").strip().splitlines()]
    if not lines:
        return "", ""
    return lines[0], "\n".join(lines[1:]).strip()


def document(title: str, ops: Iterable[Operation], version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `ops`."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for op in sorted(ops, key=lambda o: (o.path, o.method)):
        path = _PARAM.sub(r"{\1}", op.path)  # OpenAPI has no greedy {proxy+}
        methods = ANY_METHODS if op.method == "ANY" else (op.method.lower(),)
        for method in methods:
            paths.setdefault(path, {})[method] = _operation(op, method, path, schemas)
    doc: dict[str, Any] = {
        "openapi": VERSION,
        "info": {"title": title, "version": version},
        "paths": paths,
    }
    if schemas:
        doc["components"] = {"schemas": schemas}
    return doc


def _operation(op: Operation, method: str, path: str, schemas: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": _operation_id(method, path)}
    if op.summary:
        out["summary"] = op.summary
    if op.description:
        out["description"] = op.description
    params = _PARAM.findall(path)
    if params:
        out["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in params
        ]
    responses: dict[str, Any] = {}
    if op.response_model is not None:
        schema = _schema(op.response_model, schemas)
        responses["200"] = {
            "description": "Successful response",
            "content": {"application/json": {"schema": schema}},
        }
    else:
        responses["200"] = {"description": "Successful response"}
    if op.request_model is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(op.request_model, schemas)}},
        }
        responses["400"] = {
            "description": "The body does not match the request model",
            "content": {"application/json": {"schema": VALIDATION_ERROR}},
        }
    out["responses"] = responses
    for key, value in (op.extra or {}).items():
        if key == "parameters":  # one of the same name and place replaces the route's
            given = {(p["name"], p["in"]) for p in value}
            kept = [p for p in out.get("parameters", []) if (p["name"], p["in"]) not in given]
            out["parameters"] = [*kept, *value]
        elif key == "responses":
            out["responses"] = {**responses, **value}
        else:
            out[key] = value
    return out


def _schema(model: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """A $ref to `model`'s schema, added (with the models it uses) to `schemas`."""
    schema: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return f"{method}_{words}" if words else method


# What a request that fails its model gets: a message, and pydantic's error list.
VALIDATION_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "array", "items": {"type": "object"}},
    },
}
