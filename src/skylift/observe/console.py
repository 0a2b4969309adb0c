"""Invocation logs on the terminal of `skylift up`, as `sam local` shows them.

Each invocation's START / output / END / REPORT block is buffered and written in one
go every `interval` seconds, so logging costs one write per tick, not per request.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from skylift.engine.instance import InvocationResult
from skylift.observe.report import invocation_log
from skylift.spec import FunctionSpec


class ConsoleLog:
    def __init__(self, stream: TextIO | None = None, interval: float = 0.05) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._parts: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def __call__(
        self, spec: FunctionSpec, result: InvocationResult, instance: object = None
    ) -> None:
        self._parts.append(f"[{spec.name}] " + invocation_log(spec, result))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self.flush)

    def cancelled(self, spec: FunctionSpec, request_id: str, seconds: float) -> None:
        """One line for an invocation a shutdown cut off (no END or REPORT follows)."""
        self._parts.append(
            f"skylift: cancelled {spec.name} RequestId: {request_id} after {seconds:.1f} s "
            "(the server is stopping)\n"
        )
        self.flush()

    def flush(self) -> None:
        self._timer = None
        if self._parts:
            text, self._parts = "".join(self._parts), []
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # a closed terminal must not stop the server
                pass
