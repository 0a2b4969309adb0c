"""A SAM function's `LoggingConfig`: its log format and application log level."""

from __future__ import annotations

from typing import Any

from skylift.log_config import LogConfig
from skylift.sam.async_config import Resolving


def logging_config(function: Resolving, properties: dict[str, Any]) -> LogConfig:
    """LoggingConfig.LogFormat and ApplicationLogLevel (LogGroup and SystemLogLevel are
    CloudWatch's business: skylift keeps its own logs)."""
    config = function.resolve(properties.get("LoggingConfig"), "LoggingConfig")
    if config is None:
        return LogConfig()
    if not isinstance(config, dict):
        raise function.fail("LoggingConfig must be a mapping, e.g. {LogFormat: JSON}")
    fmt = config.get("LogFormat", "Text")
    level = config.get("ApplicationLogLevel")
    if not isinstance(fmt, str) or not (level is None or isinstance(level, str)):
        raise function.fail("LoggingConfig.LogFormat and ApplicationLogLevel must be strings")
    result = LogConfig(fmt, level)
    problem = result.problem()
    if problem is not None:
        raise function.fail(f"LoggingConfig: {problem}")
    return result
