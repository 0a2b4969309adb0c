"""The root logging handler Lambda's Python runtime installs, and its two formats.

The runtime installs it *before* the init phase, so a module that calls
`logging.basicConfig()` at import finds the root logger configured and adds nothing,
and aws-lambda-powertools' `Logger` (which filters the root handlers it finds) prints
each line once. `AWS_LAMBDA_LOG_FORMAT=JSON` (SAM `LoggingConfig.LogFormat`) switches
to Lambda's JSON lines and `AWS_LAMBDA_LOG_LEVEL` sets the root level, as awslambdaric
does.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
JSON_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# LogRecord attributes that are not `extra` fields (awslambdaric's list).
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "aws_request_id",
    "taskName",
}

_request_id = ""
_handler: logging.Handler | None = None


def set_request_id(request_id: str) -> None:
    global _request_id
    _request_id = request_id


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on every record, as the Lambda runtime does."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class JsonFormatter(logging.Formatter):
    """Lambda's JSON log line: timestamp, level, message, logger, requestId, extras."""

    def __init__(self) -> None:
        super().__init__(datefmt=JSON_TIME_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        message = (
            record.msg if isinstance(record.msg, dict) and not record.args else record.getMessage()
        )
        line: dict[str, Any] = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": message,
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", None) or None,
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["errorType"] = record.exc_info[0].__name__
            line["errorMessage"] = str(record.exc_info[1])
            line["stackTrace"] = traceback.format_tb(record.exc_info[2])
            line["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        return json.dumps({k: v for k, v in line.items() if v is not None}, default=str)


def json_format() -> bool:
    return os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def install() -> None:
    """Add the runtime's root handler (once per process tree: workers inherit it)."""
    global _handler
    if _handler is None:
        _handler = logging.StreamHandler(sys.stdout)
        _handler.addFilter(RequestIdFilter())
        logging.getLogger().addHandler(_handler)
    configure()


def set_stream(stream: Any) -> None:
    """Point the root handler at `stream` (the handler's old one may have been closed)."""
    if _handler is not None and isinstance(_handler, logging.StreamHandler):
        _handler.stream = stream


def configure() -> None:
    """Apply the format and level the environment asks for now (a worker's function may
    ask for other ones than its app's zygote had)."""
    if _handler is None:
        return
    text = logging.Formatter(TEXT_FORMAT, TIME_FORMAT)
    formatter = JsonFormatter() if json_format() else text
    formatter.converter = time.gmtime
    _handler.setFormatter(formatter)
    # awslambdaric maps TRACE to DEBUG and ignores names logging does not know.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper().replace("TRACE", "DEBUG")
    if not level and json_format():
        level = "INFO"  # Lambda's default application log level with the JSON format
    if level in logging.getLevelNamesMapping():
        logging.getLogger().setLevel(level)


def error_line(payload: dict[str, Any], dumps: Callable[[dict[str, Any]], str] = json.dumps) -> str:
    """The line Lambda writes for an unhandled error, in the function's log format (a JSON
    line written by `dumps`: the runtime's encoder, see `results.py`)."""
    if json_format():
        line = {
            "timestamp": time.strftime(JSON_TIME_FORMAT, time.gmtime()),
            "level": "ERROR",
            **payload,
        }
        return dumps(line)
    lines = [f"[ERROR] {payload['errorType']}: {payload['errorMessage']}"]
    if payload["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in payload["stackTrace"])
    return "\n".join(lines)
