"""A function's log format and level: Lambda's `LoggingConfig` (SAM and `log_format=`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMATS = ("Text", "JSON")
LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


@dataclass(frozen=True)
class LogConfig:
    """`LogFormat` and `ApplicationLogLevel`; Lambda accepts a level with JSON only."""

    format: str = "Text"
    level: str | None = None

    def problem(self) -> str | None:
        """What is wrong with it, in words that say what to change; None if nothing."""
        if self.format not in FORMATS:
            return f"log format {self.format!r} is invalid: use Text or JSON"
        if self.level is not None:
            if self.level not in LEVELS:
                return f"log level {self.level!r} is invalid: use one of {', '.join(LEVELS)}"
            if self.format != "JSON":
                return "a log level needs the JSON log format, as on Lambda: set it to JSON"
        return None

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets for it (the runtime reads them)."""
        if self.format != "JSON":
            return {}
        env = {"AWS_LAMBDA_LOG_FORMAT": "JSON"}
        if self.level is not None:
            env["AWS_LAMBDA_LOG_LEVEL"] = self.level
        return env

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "level": self.level}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LogConfig:
        return cls(data["format"], data.get("level")) if data else cls()
