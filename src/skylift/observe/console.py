"""Invocation logs on the terminal of `skylift up`, as CloudWatch shows them.

Each invocation's lines — START, what the function printed, the platform's timeout or
crash line, END, REPORT — every one prefixed with `[function]`. An invocation that runs
longer than `engine.instance.STREAM_EVERY` shows its output as it is printed (START
first, then its lines); the rest follows when it ends. Lines are buffered and written
every `interval` seconds, so logging costs one write per tick, not per request.

Under load the terminal shows each function's first `per_second` invocations of every
second in full, and every failed or streamed one; the other successes are counted, and
one line says how many were left out once the second is over. Thousands of lines a
second are of no use on a terminal, and formatting them all cost the server's loop about
1 µs a request under wrk (to /dev/null; a profile with a terminal put it at 7% of the
loop); every invocation stays in `skylift logs`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

from skylift.engine.instance import InvocationResult
from skylift.observe.records import invocation_events
from skylift.observe.report import start_line
from skylift.spec import FunctionSpec

PER_SECOND = 50  # invocations of a function shown in full each second (failures: all)
UNBOUNDED = 1 << 62  # `per_second` where logs are not stored: every invocation is shown


class ConsoleLog:
    """An invoker observer writing invocation logs to `stream` (stderr); `per_second`
    bounds the invocations of a function formatted each second (failures: all)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        interval: float = 0.05,
        per_second: int = PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.per_second = per_second
        self.clock = clock
        self._second = 0  # the second counted (int(clock()))
        self._shown: dict[str, int] = {}  # function -> invocations shown this second
        self._left_out: dict[str, int] = {}  # function -> successes not shown this second
        # Text, or an invocation's result to format when flushed.
        self._parts: list[str | tuple[FunctionSpec, InvocationResult, int, int]] = []
        self._timer: asyncio.TimerHandle | None = None
        # Request id -> bytes of its output already shown while it ran.
        self._streamed: dict[str, int] = {}

    def __call__(
        self, spec: FunctionSpec, result: InvocationResult, instance: object = None
    ) -> None:
        # Formatted when flushed, off the request's path; its time is taken now.
        shown = self._streamed.pop(result.request_id, 0)
        second = int(self.clock())
        if second != self._second:
            self._next_second(second)
        name = spec.name
        count = self._shown.get(name, 0)
        if count >= self.per_second and result.error is None and not shown:
            self._left_out[name] = self._left_out.get(name, 0) + 1
            self._schedule()  # the count's line, once the second is over
            return
        self._shown[name] = count + 1
        self._parts.append((spec, result, shown, int(time.time() * 1000)))
        self._schedule()

    def _next_second(self, second: int) -> None:
        """Say how many invocations the second that ended left out, and count anew."""
        for name, count in self._left_out.items():
            self._parts.append(
                f"[{name}] ... {count:,} more invocation{'s' if count > 1 else ''} in that "
                f"second, not shown (over {self.per_second} a second; all are in "
                f"`skylift logs {name}`)\n"
            )
        self._left_out.clear()
        self._shown.clear()
        self._second = second

    @staticmethod
    def _render(spec: FunctionSpec, result: InvocationResult, shown: int, ended_ms: int) -> str:
        lines = [message for _, message in invocation_events(spec, result, ended_ms)]
        if shown:
            # The streamed output (and, in text format, START) is on the terminal already:
            # go on from where it ended; if it was trimmed meanwhile, show it all again.
            start, rest = lines[:1], lines[1:]
            text = result.logs[:shown].decode("utf-8", "replace")
            already = [line for line in text.splitlines() if line]
            if not result.logs.startswith(b"[skylift: ") and rest[: len(already)] == already:
                rest = rest[len(already) :]
            lines = (start if spec.log_config.format == "JSON" else []) + rest
        prefix = f"[{spec.name}] "
        return "".join(f"{prefix}{line}\n" for line in lines)

    def output(self, spec: FunctionSpec, request_id: str, data: bytes) -> None:
        """Output of a running invocation, in whole lines."""
        prefix = f"[{spec.name}] "
        if request_id not in self._streamed:
            self._streamed[request_id] = 0
            if spec.log_config.format != "JSON":  # JSON's platform.start comes at the end
                self._parts.append(f"{prefix}{start_line(request_id)}\n")
        self._streamed[request_id] += len(data)
        text = data.decode("utf-8", "replace")
        self._parts.append("".join(f"{prefix}{line}\n" for line in text.splitlines() if line))
        self._schedule()

    def cancelled(self, spec: FunctionSpec, request_id: str, seconds: float) -> None:
        """One line for an invocation a shutdown cut off (no END or REPORT follows)."""
        self._streamed.pop(request_id, None)
        self._parts.append(
            f"skylift: cancelled {spec.name} RequestId: {request_id} after {seconds:.1f} s "
            "(the server is stopping)\n"
        )
        self.flush()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._left_out and int(self.clock()) == self._second:
            # The count's line comes once the second is over; what is shown goes now.
            wait = max(self.interval, self._second + 1 - self.clock())
            self._timer = asyncio.get_running_loop().call_later(wait, self._tick)
            self._write()
        else:
            self.flush()

    def flush(self) -> None:
        """Write what is pending, with the count of what the current second left out."""
        if self._left_out:
            self._next_second(int(self.clock()))
        self._write()

    def _write(self) -> None:
        if self._parts:
            parts, self._parts = self._parts, []
            text = "".join(p if isinstance(p, str) else self._render(*p) for p in parts)
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # a closed terminal must not stop the server
                pass
