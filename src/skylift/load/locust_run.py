"""Drive Locust as a library: headless, `FastHttpUser`s sending back to back, one step
of users at a time, until a step gives way or the ramp ends.

Importing this module imports Locust, which monkey-patches the process for gevent:
only `skylift load`'s own process may import it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, constant, task  # isort: skip (patches first)
import gevent
from locust.env import Environment

from skylift.load.steps import Step, holds, measure

TICK = 0.1  # seconds between progress reports


@dataclass(frozen=True)
class Request:
    """What every simulated user sends, back to back."""

    url: str  # absolute: http://127.0.0.1:PORT/path?query
    method: str = "GET"
    body: bytes | None = None
    headers: Mapping[str, str] | None = None  # e.g. the server's token for its Lambda API
    invoke: bool = False  # a Lambda Invoke: a function error (200 with a header) fails too


@dataclass(frozen=True)
class Progress:
    """A step under way: `done` of its measuring time, as a fraction."""

    users: int
    done: float


def run(request: Request, users: Sequence[int], step_time: float) -> Iterator[Progress | Step]:
    """Run the steps of `users`, yielding progress and each finished step; stop after
    the first step that gives way (its p95 past twice the first step's, or errors)."""
    parts = urlsplit(request.url)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {"Content-Type": "application/json"} if request.body is not None else {}
    headers.update(request.headers or {})
    data = None if request.body is None else request.body.decode("utf-8")  # JSON is text

    class Client(FastHttpUser):
        host = base
        wait_time = constant(0)

        @task
        def send(self) -> None:
            if not request.invoke:
                self.client.request(request.method, path, data=data, headers=headers)
                return
            with self.client.request(
                request.method, path, data=data, headers=headers, catch_response=True
            ) as answer:
                failed = answer.headers.get("X-Amz-Function-Error")
                if failed:
                    answer.failure(f"function error: {failed}")

    latencies: list[float] = []
    failures = [0]

    def record(response_time: float, exception: Any = None, **_: Any) -> None:
        latencies.append(response_time)
        if exception is not None:
            failures[0] += 1

    env = Environment(user_classes=[Client], host=base)
    env.events.request.add_listener(record)  # type: ignore[no-untyped-call]  # locust: untyped
    runner = env.create_local_runner()
    warmup = min(1.0, step_time / 5)  # new users' first requests (and cold starts) settle
    unloaded: float | None = None
    try:
        for count in users:
            runner.start(count, spawn_rate=max(count, 1) * 10, wait=False)
            deadline = time.monotonic() + 10
            while runner.user_count < count and time.monotonic() < deadline:
                gevent.sleep(0.01)
            gevent.sleep(warmup)
            latencies.clear()
            failures[0] = 0
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < step_time:
                yield Progress(count, elapsed / step_time)
                gevent.sleep(min(TICK, step_time - elapsed))
            step = measure(count, list(latencies), failures[0], time.monotonic() - started)
            yield step
            unloaded = step.p95 if unloaded is None else unloaded
            if not holds(step, unloaded):
                return
    finally:
        runner.quit()
