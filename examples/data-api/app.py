"""data-api: aggregate a column of an uploaded CSV, grouped by another column.

GET /api/funcs lists the aggregations. PUT /api/npsum?column=count&group_by=first_name
with Content-Type: application/json and the CSV, base64-encoded, as the body answers
{"Mary": 12, "John": 7}:

    base64 -w0 names.csv | curl -X PUT -H 'Content-Type: application/json' \
        --data-binary @- 'http://127.0.0.1:8080/api/npsum?column=count&group_by=first_name'

pandas is imported here, at import: in the init phase, once, shared by forked instances.
"""

import base64
import binascii
import io
import json

import numpy as np
import pandas as pd

from skylift import App

app = App("data-api", docs=True)  # /openapi.json and Swagger UI at /docs

# name -> (pandas' name of the numpy reduction, whether it needs numbers, description).
# The course's names are numpy's; pandas' own groupby reductions compute the same in C.
OPS = {
    "npsum": ("sum", True, "sum of the column per group"),
    "npmedian": ("median", True, "median of the column per group"),
    "npmean": ("mean", True, "mean of the column per group"),
    "npmax": ("max", True, "largest value of the column per group"),
    "npmin": ("min", True, "smallest value of the column per group"),
    "npcount": ("count", False, "number of non-empty values of the column per group"),
}


class BadRequest(Exception):
    """Raised when the request cannot be served; carries the status and the message."""

    def __init__(self, status: int, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def respond(status: int, payload: object) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }


@app.http("/api/funcs", methods=["GET"])
def funcs(event, context):
    """The aggregations offered, each with a one-line description."""
    return respond(200, {name: description for name, (_, _, description) in OPS.items()})


def content_type(event: dict) -> str:
    headers = event.get("headers") or {}
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return value.split(";")[0].strip().lower()


def read_csv(event: dict) -> pd.DataFrame:
    """The request's CSV, or BadRequest saying which of base64 and CSV it is not."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    text = body.strip()
    if text.startswith('"'):  # a JSON string holding the base64 text is as good
        try:
            text = json.loads(text)
        except json.JSONDecodeError:
            raise BadRequest(400, "the body is not base64: send the CSV base64-encoded") from None
        if not isinstance(text, str):
            raise BadRequest(400, "the body is not base64: send the CSV base64-encoded")
    if not text.strip():
        raise BadRequest(400, "the body is empty: send a CSV, base64-encoded")
    try:
        # `base64` wraps its output at 76 columns: line breaks are not part of the data
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, "the body is not base64: send the CSV base64-encoded") from None
    try:
        csv = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest(400, "the body is not CSV: its base64 decodes to binary data") from None
    try:
        return pd.read_csv(io.StringIO(csv))
    except pd.errors.EmptyDataError:
        raise BadRequest(400, "the body is not CSV: it decodes to no columns") from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadRequest(400, f"the body is not CSV: {first}") from None


def aggregate(op: str, column: str, group_by: str, frame: pd.DataFrame) -> dict:
    missing = [name for name in (column, group_by) if name not in frame.columns]
    if missing:
        raise BadRequest(
            400,
            f"the CSV has no column {', '.join(map(repr, missing))}; "
            f"its columns are {', '.join(map(str, frame.columns))}",
        )
    function, numeric, _ = OPS[op]
    values = frame[column]
    if numeric and (
        not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
    ):
        raise BadRequest(400, f"column {column!r} is not numeric: {op} needs numbers")
    groups = frame.groupby(group_by, sort=True)[column]
    result = groups.agg(function)
    # JSON keys are strings; NaN (a group with no values) becomes null
    return {str(key): plain(value) for key, value in result.items()}


def plain(value: object) -> object:
    """A JSON-ready Python value for a numpy scalar."""
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _query(name: str, example: str) -> dict:
    schema = {"type": "string", "minLength": 1}
    return {"name": name, "in": "query", "required": True, "schema": schema, "example": example}


ERROR = {
    "application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}
}
# What /openapi.json says of PUT /api/{op} beyond its route: no pydantic model describes
# a base64 body, so the operation's keys are given as they are.
AGGREGATE_DOC = {
    "parameters": [
        {"name": "op", "in": "path", "required": True, "schema": {"enum": list(OPS)}},
        _query("column", "count"),
        _query("group_by", "first_name"),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "string", "contentEncoding": "base64"},
                "example": base64.b64encode(b"first_name,count\nMary,5\nJohn,7\nMary,7\n").decode(),
            }
        },
    },
    "responses": {
        "200": {
            "description": "The column aggregated per group",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": {"type": ["number", "null"]},
                    }
                }
            },
        },
        "400": {"description": "A parameter, the body or the CSV is wrong", "content": ERROR},
        "404": {"description": "Unknown op; `ops` lists the known ones", "content": ERROR},
        "415": {"description": "The body is not sent as application/json", "content": ERROR},
    },
}


@app.http("/api/{op}", methods=["PUT"], memory=1024, timeout=30, openapi=AGGREGATE_DOC)
def aggregate_csv(event, context):
    """Aggregate `column` of the CSV in the body, grouped by `group_by`."""
    try:
        op = (event.get("pathParameters") or {}).get("op", "")
        if op not in OPS:
            raise BadRequest(404, f"unknown op {op!r}; the ops are {', '.join(OPS)}", ops=list(OPS))
        if content_type(event) != "application/json":
            raise BadRequest(415, "send the base64-encoded CSV with Content-Type: application/json")
        params = event.get("queryStringParameters") or {}
        absent = [name for name in ("column", "group_by") if not params.get(name)]
        if absent:
            raise BadRequest(
                400,
                f"the query parameter {' and '.join(absent)} is missing: "
                "PUT /api/OP?column=C&group_by=G",
            )
        result = aggregate(op, params["column"], params["group_by"], read_csv(event))
    except BadRequest as exc:
        return respond(exc.status, {"error": str(exc), **exc.extra})
    return respond(200, result)
