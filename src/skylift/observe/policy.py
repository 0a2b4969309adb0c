"""The alerting policy: `[alerts]` in the app's `skylift.toml` (or, with the same keys,
a SAM template's `Metadata.skylift.alerts`: see `policy_sam.py`), read once at start.

Thresholds, windows, who is primary and backup, which channels hear of what: all of it
is the app's file, not code. A file that cannot be used fails `skylift up` with its
path and the line at fault:

    skylift.toml line 4: [alerts] page_at must be a number of standard deviations, got 'x'

The format (every key optional except a contact's `name`):

    [alerts]
    interval = "15s"        # how often the detectors sample
    window = "1h"           # rolling window of samples for the mean and standard deviation
    min_samples = 20        # no judgement before this many samples
    for = "1m"              # a level must hold this long before it fires
    cooldown = "15m"        # after an alert ends, the same series stays quiet this long
    escalate_after = "5m"   # a page nobody acked goes to the backup after this
    page_at = 3.0           # standard deviations: page the primary
    notify_at = 2.0         # standard deviations: tell the channels, page nobody
    metrics = ["duration_p99", "error_rate", "throttles", "queue_age"]
    retries = 3             # webhook attempts after the first
    retry_backoff = "1s"    # first wait between attempts, doubled each time

    [alerts.floors]         # the smallest standard deviation used (see docs/alerting.md)
    error_rate = 0.01

    [alerts.primary]
    name = "alice"
    webhook = "https://pager.example/alice"       # JSON POST
    slack = "https://hooks.slack.com/services/…"  # Slack-compatible incoming webhook

    [alerts.backup]
    name = "bob"
    webhook = "https://pager.example/bob"

    [[alerts.channels]]
    name = "#payments"
    slack = "https://hooks.slack.com/services/…"

    [[alerts.actions]]      # see policy_actions.py: scale, rollback or drain
    function = "pay"
    rollback = true
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skylift.errors import SkyliftError
from skylift.observe.alerts_actions import Rule
from skylift.observe.policy_actions import read_actions

FILE = "skylift.toml"
METRICS = ("duration_p99", "error_rate", "throttles", "queue_age")
# The smallest standard deviation a detector divides by, per metric: a series that has
# been perfectly flat (no errors at all) would otherwise make any blip infinite sigmas.
FLOORS = {"duration_p99": 0.005, "error_rate": 0.01, "throttles": 0.1, "queue_age": 1.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SETTINGS = {
    "interval",
    "window",
    "min_samples",
    "for",
    "cooldown",
    "escalate_after",
    "page_at",
    "notify_at",
    "metrics",
    "retries",
    "retry_backoff",
    "floors",
    "primary",
    "backup",
    "channels",
    "actions",
}
_CONTACT_KEYS = {"name", "webhook", "slack"}


class PolicyError(SkyliftError):
    """Raised when a policy file cannot be used; names the file and the line at fault."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        where = f"{path} line {line}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Contact:
    """Someone (or a channel) to tell: by webhook (JSON), Slack webhook, or both."""

    name: str
    webhook: str | None = None
    slack: str | None = None


@dataclass(frozen=True)
class Policy:
    interval: float = 15.0
    window: float = 3600.0
    min_samples: int = 20
    hold: float = 60.0  # the file's `for`
    cooldown: float = 900.0
    escalate_after: float = 300.0
    page_at: float = 3.0
    notify_at: float = 2.0
    metrics: tuple[str, ...] = METRICS
    retries: int = 3
    retry_backoff: float = 1.0
    floors: dict[str, float] = field(default_factory=lambda: dict(FLOORS))
    primary: Contact | None = None
    backup: Contact | None = None
    channels: tuple[Contact, ...] = ()
    actions: tuple[Rule, ...] = ()
    source: Path | None = None  # the file it was read from

    @property
    def window_samples(self) -> int:
        """How many samples the rolling window holds."""
        return max(2, round(self.window / self.interval))


def find(home: Path) -> Path | None:
    path = home / FILE
    return path if path.is_file() else None


def load(path: Path) -> Policy | None:
    """The policy in `path`, or None when the file has no `[alerts]` table.

    >>> load(Path("skylift.toml")).page_at  # doctest: +SKIP
    3.0
    """
    text = path.read_text(encoding="utf-8")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise PolicyError(path, int(found.group(1)) if found else None, str(exc)) from None
    table = document.get("alerts")
    if table is None:
        return None
    return Reader(path, text).policy(table)


class Reader:
    """Turns the parsed table into a Policy, pointing at the line of any bad value."""

    def __init__(
        self,
        path: Path,
        text: str,
        locate: Callable[[str, str, int], int | None] | None = None,
        label: Callable[[str], str] = lambda table: f"[{table}]",
    ) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.locate = locate or self.line_of
        self.label = label

    def fail(self, table: str, key: str, message: str, index: int = 0) -> PolicyError:
        line = self.locate(table, key, index)
        return PolicyError(self.path, line, f"{self.label(table)} {message}")

    def line_of(self, table: str, key: str, index: int = 0) -> int | None:
        """The line setting `key` inside the index-th `[table]` (or `[[table]]`), else
        that header's line."""
        current, header, seen = "", None, -1
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            heading = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", line)
            if heading:
                current = heading.group(1).replace('"', "").replace(" ", "")
                if current == table:
                    seen += 1
                    if seen == index:
                        header = number
                continue
            if current == table and seen == index and re.match(rf'^"?{re.escape(key)}"?\s*=', line):
                return number
            if current == "" and table.startswith("alerts") and line.startswith(f"{table}."):
                return number  # dotted keys at the top level
        return header

    def policy(self, table: Any) -> Policy:
        if not isinstance(table, dict):
            raise PolicyError(self.path, self.locate("", "alerts", 0), "alerts must be a table")
        unknown = sorted(set(table) - _SETTINGS)
        if unknown:
            raise self.fail(
                "alerts",
                unknown[0],
                f"unknown setting {unknown[0]!r}; the settings are {', '.join(sorted(_SETTINGS))}",
            )
        default = Policy()
        page_at = self.number(table, "page_at", default.page_at)
        notify_at = self.number(table, "notify_at", default.notify_at)
        if not 0 < notify_at < page_at:
            raise self.fail(
                "alerts",
                "notify_at",
                f"notify_at ({notify_at}) must be above 0 and below "
                f"page_at ({page_at}): 2 sigma tells a channel, 3 sigma pages",
            )
        interval = self.duration(table, "interval", default.interval)
        window = self.duration(table, "window", default.window)
        if window < 2 * interval:
            raise self.fail(
                "alerts",
                "window",
                f"window ({window:g}s) must hold at least two intervals ({interval:g}s each)",
            )
        metrics = table.get("metrics", list(METRICS))
        if not isinstance(metrics, list) or not metrics or any(m not in METRICS for m in metrics):
            raise self.fail(
                "alerts",
                "metrics",
                f"metrics must list some of {', '.join(METRICS)}, got {metrics!r}",
            )
        floors = dict(FLOORS)
        given = table.get("floors", {})
        if not isinstance(given, dict):
            raise self.fail("alerts", "floors", "floors must be a table of metric = number")
        for name in given:
            if name not in METRICS:
                raise self.fail(
                    "alerts.floors", name, f"{name!r} is not a metric ({', '.join(METRICS)})"
                )
            floors[name] = self.number(given, name, 0.0, "alerts.floors")
        channels = table.get("channels", [])
        if not isinstance(channels, list):
            raise self.fail("alerts", "channels", "channels must be [[alerts.channels]] tables")
        return Policy(
            interval=interval,
            window=window,
            min_samples=self.whole(table, "min_samples", default.min_samples, least=2),
            hold=self.duration(table, "for", default.hold, zero=True),
            cooldown=self.duration(table, "cooldown", default.cooldown, zero=True),
            escalate_after=self.duration(table, "escalate_after", default.escalate_after),
            page_at=page_at,
            notify_at=notify_at,
            metrics=tuple(metrics),
            retries=self.whole(table, "retries", default.retries, least=0),
            retry_backoff=self.duration(table, "retry_backoff", default.retry_backoff, zero=True),
            floors=floors,
            primary=self.contact(table, "primary"),
            backup=self.contact(table, "backup"),
            channels=tuple(self.channel(c, i) for i, c in enumerate(channels)),
            actions=read_actions(table.get("actions", []), self.fail),
            source=self.path,
        )

    def channel(self, entry: Any, index: int) -> Contact:
        found = self.contact({"channels": entry}, "channels", index)
        assert found is not None
        return found

    def contact(self, table: dict[str, Any], key: str, index: int = 0) -> Contact | None:
        entry = table.get(key)
        if entry is None:
            return None
        where = f"alerts.{key}"
        if not isinstance(entry, dict):
            raise self.fail("alerts", key, f"{key} must be a table with name, webhook, slack")
        unknown = sorted(set(entry) - _CONTACT_KEYS)
        if unknown:
            raise self.fail(
                where, unknown[0], f"unknown key {unknown[0]!r}; use name, webhook and slack", index
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(
                where, "name", f'{key} needs a name = "..." (who or which channel)', index
            )
        urls: dict[str, str | None] = {}
        for kind in ("webhook", "slack"):
            url = entry.get(kind)
            if url is not None and (
                not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url)
            ):
                raise self.fail(where, kind, f"{kind} must be an http(s) URL, got {url!r}", index)
            urls[kind] = url
        return Contact(name, urls["webhook"], urls["slack"])

    def number(
        self, values: dict[str, Any], key: str, default: float, table: str = "alerts"
    ) -> float:
        value = values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(table, key, f"{key} must be a number at least 0, got {value!r}")
        return float(value)

    def whole(self, values: dict[str, Any], key: str, default: int, *, least: int) -> int:
        value = values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise self.fail(
                "alerts", key, f"{key} must be a whole number from {least}, got {value!r}"
            )
        return value

    def duration(
        self, values: dict[str, Any], key: str, default: float, *, zero: bool = False
    ) -> float:
        """Seconds, from a number or "500ms", "15s", "5m", "1h", "1d"."""
        value = values.get(key, default)
        seconds: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.match(value)):
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds is None or seconds < 0 or (seconds == 0 and not zero):
            least = "0 or more" if zero else "above 0"
            raise self.fail(
                "alerts",
                key,
                f'{key} must be a duration {least} (seconds, or "500ms", "15s", "5m", '
                f'"1h"), got {value!r}',
            )
        return seconds
