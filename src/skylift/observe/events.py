"""What happened to each function, with reasons: the events `skylift describe` lists.

The platform records an event where it happens (`engine/recording.Record`): the invoker
a throttle, the autoscaler a scaling decision, the reloader a reload, the alert engine
an alert; `InvocationEvents`, an invoker observer, turns results into cold starts,
timeouts, crashes and out-of-memory kills. Recording appends to a bounded list in
memory (the last `KEEP` per function; a repeat of the newest event only counts up, as
Kubernetes aggregates its events); a thread writes each changed function's list to
`.skylift/events/FUNCTION.jsonl` every `interval` seconds, so `describe` also works
from the state folder after the server stopped.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from skylift.engine.instance import InvocationResult
from skylift.engine.recording import Record
from skylift.errors import is_disk_full
from skylift.spec import FunctionSpec

if TYPE_CHECKING:
    from skylift.observe.alerts_store import Alert
    from skylift.observe.collect import Observed
    from skylift.observe.policy import Contact

    AlertSend = Callable[[str, Alert, Sequence[Contact]], None]

logger = logging.getLogger("skylift.events")

DIRECTORY = "events"
KEEP = 100  # events per function
NORMAL, WARNING = "Normal", "Warning"
# reason -> (type, the component that reports it: kubectl's "From")
REASONS: dict[str, tuple[str, str]] = {
    "ColdStart": (NORMAL, "pool"),
    "Timeout": (WARNING, "invoker"),
    "Crashed": (WARNING, "invoker"),
    "OOMKilled": (WARNING, "invoker"),
    "Throttled": (WARNING, "invoker"),
    "Scaled": (NORMAL, "autoscaler"),
    "Reloaded": (NORMAL, "reloader"),
    "ReloadFailed": (WARNING, "reloader"),
    "AlertFiring": (WARNING, "alerts"),
    "AlertResolved": (NORMAL, "alerts"),
}


@dataclass
class Event:
    """One event, or a run of the same one (`count` times, from `first` to `last`)."""

    type: str
    reason: str
    source: str
    message: str
    first: float  # epoch seconds
    last: float
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        return cls(
            type=str(raw["type"]),
            reason=str(raw["reason"]),
            source=str(raw["source"]),
            message=str(raw["message"]),
            first=float(raw["first"]),
            last=float(raw["last"]),
            count=int(raw.get("count", 1)),
        )


def folder(state_dir: Path) -> Path:
    return state_dir / DIRECTORY


def events_file(state_dir: Path, function: str) -> Path:
    return folder(state_dir) / f"{function}.jsonl"


def read(state_dir: Path, function: str) -> list[Event]:
    """A function's events as last written to the state folder, oldest first."""
    try:
        data = events_file(state_dir, function).read_bytes()
    except FileNotFoundError:
        return []
    found: list[Event] = []
    for line in data.splitlines():
        try:
            found.append(Event.from_dict(orjson.loads(line)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a damaged line costs that event only
    return found


class EventLog:
    """Every function's recent events, in memory and written to the state folder."""

    def __init__(
        self,
        state_dir: Path,
        functions: Iterable[str] = (),
        interval: float = 0.5,
        keep: int = KEEP,
    ) -> None:
        self.state_dir = state_dir
        self.interval = interval
        self.keep = keep
        self._events: dict[str, collections.deque[Event]] = {}
        self._changed: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Called before events are read or recorded: records what pending results tell
        # of first (the intake's `drain`).
        self.sync: Callable[[], None] = _nothing
        for name in functions:  # read now, not on the request path of a first event
            self._function(name)

    def record(self, function: str, reason: str, message: str) -> None:
        """Keep an event (the engine's `Record` hook); cheap, no I/O."""
        self.sync()  # the pending invocations' events happened before this one
        kind, source = REASONS.get(reason, (NORMAL, "skylift"))
        now = time.time()
        with self._lock:
            events = self._function(function)
            newest = events[-1] if events else None
            if newest is not None and (newest.reason, newest.message) == (reason, message):
                newest.count += 1
                newest.last = now
            else:
                events.append(Event(kind, reason, source, message, now, now))
            self._changed.add(function)

    def events(self, function: str) -> list[Event]:
        """The function's events, oldest first (kubectl lists the newest last)."""
        self.sync()
        with self._lock:
            return [Event(**e.to_dict()) for e in self._function(function)]

    def _function(self, function: str) -> collections.deque[Event]:
        events = self._events.get(function)
        if events is None:
            # Events from before a restart are still the function's history.
            kept = read(self.state_dir, function)[-self.keep :]
            events = self._events[function] = collections.deque(kept, maxlen=self.keep)
        return events

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="skylift-events", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        noted = -3600.0
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except OSError as exc:
                if not is_disk_full(exc):
                    logger.exception("writing events under %s failed", folder(self.state_dir))
                elif time.monotonic() - noted > 60:  # said once a minute, not as tracebacks
                    noted = time.monotonic()
                    logger.warning(
                        "writing events under %s failed: no space is left on its disk; "
                        "they are written once space is freed",
                        folder(self.state_dir),
                    )
            except Exception:  # nothing must end recording for good
                logger.exception("writing events under %s failed", folder(self.state_dir))

    def flush(self) -> None:
        """Write each changed function's events (a few KiB: rewritten whole, atomically)."""
        with self._lock:
            changed, self._changed = self._changed, set()
            snapshots = {name: [e.to_dict() for e in self._events[name]] for name in changed}
        for name, events in snapshots.items():
            path = events_file(self.state_dir, name)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(".tmp")
                temporary.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
                os.replace(temporary, path)
            except OSError:
                with self._lock:  # written next time, once there is space again
                    self._changed.add(name)
                raise


class InvocationEvents:
    """An invoker observer: the events an invocation's result tells of."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        # Instances that served before: an instance's first invocation is its cold start,
        # even one that never finished (its result then has no init duration).
        self._served: weakref.WeakSet[object] = weakref.WeakSet()

    def count(self, batch: Sequence[Observed]) -> None:
        """The events of a batch of finished invocations, in the order they ended."""
        # An instance seen earlier in this batch served before: no weak-set lookup for it
        # (the batch holds its instances, so no id is reused while it runs).
        seen: set[int] = set()
        for spec, result, instance, _ in batch:
            key = id(instance)
            if key in seen and result.init_ms is None and instance is not None:
                if result.error is not None:
                    self._failed(spec, result)
                continue
            seen.add(key)
            self(spec, result, instance)

    def __call__(
        self, spec: FunctionSpec, result: InvocationResult, instance: object | None = None
    ) -> None:
        if self._first(instance, result):
            init = "" if result.init_ms is None else f" (init {result.init_ms:.1f} ms)"
            self.log.record(spec.name, "ColdStart", f"started a new instance{init}")
        if result.error is not None:
            self._failed(spec, result)

    def _failed(self, spec: FunctionSpec, result: InvocationResult) -> None:
        found = failure(result)
        if found is not None:
            reason, message = found
            self.log.record(spec.name, reason, f"{message} (request {result.request_id})")

    def _first(self, instance: object | None, result: InvocationResult) -> bool:
        if instance is None:
            return result.init_ms is not None
        try:
            if instance in self._served:
                return False
            self._served.add(instance)
        except TypeError:  # an instance that cannot be weakly referenced
            return result.init_ms is not None
        return True


def _nothing() -> None:
    """The default `sync`: nothing is held back."""


# errorType of a platform failure -> the event's reason
_FAILURES = {
    b'"Sandbox.Timedout"': "Timeout",
    b'"Runtime.OutOfMemory"': "OOMKilled",
    b'"Runtime.ExitError"': "Crashed",
}


def failure(result: InvocationResult) -> tuple[str, str] | None:
    """(reason, message) when the platform ended the invocation: timeout, crash, OOM.

    A function's own error (an exception it raised) is the function's, not an event of
    the platform's, as Kubernetes records a container's crash but not its error log.
    """
    for marker, reason in _FAILURES.items():
        if marker in result.payload:
            try:
                message = str(orjson.loads(result.payload).get("errorMessage", ""))
            except (orjson.JSONDecodeError, AttributeError):
                message = ""
            # "RequestId: X Error: Task timed out after 1.00 seconds" -> the words after.
            return reason, message.split(" Error: ", 1)[-1] or reason
    return None


def age(seconds: float) -> str:
    """Kubernetes' HumanDuration, as kubectl prints ages: 90s, 3m10s, 25m, 5h20m, 3d."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours = seconds // 60, seconds // 3600
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    return f"{hours // 24}d"


def table(events: Iterable[Event], now: float | None = None) -> list[str]:
    """The events as kubectl describe prints them: Type, Reason, Age, From, Message."""
    now = time.time() if now is None else now
    rows = [
        ("Type", "Reason", "Age", "From", "Message"),
        ("----", "------", "----", "----", "-------"),
    ]
    for e in events:
        when = age(now - e.last)
        if e.count > 1:
            when += f" (x{e.count} over {age(e.last - e.first)})"
        rows.append((e.type, e.reason, when, e.source, e.message))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]


def alert_events(send: AlertSend, record: Record) -> AlertSend:
    """The alert engine's `send`, also recording a function's alerts as its events."""

    def sending(kind: str, alert: Alert, contacts: Sequence[Contact]) -> None:
        if alert.kind == "function" and kind in ("notify", "page", "resolve"):
            what = f"alert {alert.id}: {alert.metric} {alert.value:.4g}"
            if kind == "resolve":
                record(alert.subject, "AlertResolved", f"{what} resolved by {alert.resolved_by}")
            else:
                level = "paged" if kind == "page" else "notified"
                record(
                    alert.subject,
                    "AlertFiring",
                    f"{what} is {alert.sigma:.1f} sigma from its mean {alert.mean:.4g} ({level})",
                )
        send(kind, alert, contacts)

    return sending
