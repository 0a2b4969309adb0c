"""The terminal of `skylift up` under load: each function's first invocations of a second
in full, every failure, and one line counting the successes left out."""

from __future__ import annotations

import asyncio
import io

from skylift.engine.instance import InvocationResult
from skylift.observe.console import ConsoleLog
from skylift.spec import FunctionSpec

SPEC = FunctionSpec(name="f", handler="app.f", code_dir=".")
OTHER = FunctionSpec(name="g", handler="app.g", code_dir=".")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ok(request_id: str) -> InvocationResult:
    return InvocationResult(request_id, b"{}", None, b"hello\n", 1.0)


def failed(request_id: str) -> InvocationResult:
    payload = b'{"errorMessage": "no", "errorType": "ValueError"}'
    return InvocationResult(request_id, payload, "Unhandled", b"", 1.0)


def starts(text: str, function: str = "f") -> list[str]:
    return [
        line.split("RequestId: ")[1].split()[0]
        for line in text.splitlines()
        if line.startswith(f"[{function}] START RequestId: ")
    ]


def test_a_busy_second_shows_its_first_invocations_every_failure_and_a_count() -> None:
    out, clock = io.StringIO(), Clock()
    clock.now = 100.9  # the second ends 0.1 s on: the console's timer waits that long

    async def run() -> None:
        console = ConsoleLog(out, interval=0.01, per_second=3, clock=clock)
        for n in range(10):
            console(SPEC, ok(f"ok{n}"))
        console(SPEC, failed("bad"))
        console(OTHER, ok("other"))  # each function has its own three
        await asyncio.sleep(0.05)
        assert starts(out.getvalue()) == ["ok0", "ok1", "ok2", "bad"]
        assert "more invocations" not in out.getvalue()  # the second is not over yet
        clock.now = 101.05  # the second ends: its count is written without another call
        await asyncio.sleep(0.2)
        assert "[f] ... 7 more invocations in that second" in out.getvalue()
        console(SPEC, ok("next"))  # a new second: shown in full again
        console.flush()

    asyncio.run(run())
    text = out.getvalue()
    assert starts(text, "g") == ["other"]
    count = "[f] ... 7 more invocations in that second, not shown (over 3 a second; all are in "
    assert count + "`skylift logs f`)\n" in text
    assert text.index("more invocations") < text.index("START RequestId: next")
    assert starts(text) == ["ok0", "ok1", "ok2", "bad", "next"]
    assert text.count("[f] hello\n") == 4  # what each shown success printed


def test_a_stop_writes_the_count_of_the_second_it_cut_short() -> None:
    out = io.StringIO()

    async def run() -> None:
        console = ConsoleLog(out, interval=60, per_second=1, clock=Clock())
        console(SPEC, ok("a"))
        console(SPEC, ok("b"))
        console.flush()  # what the server does as it stops

    asyncio.run(run())
    assert starts(out.getvalue()) == ["a"]
    assert "[f] ... 1 more invocation in that second, not shown" in out.getvalue()
