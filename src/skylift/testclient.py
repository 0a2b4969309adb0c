"""A test client for users' own tests: the app served as `skylift up` serves it, in-process.

    from skylift.testing import Client

    def test_change():
        with Client("examples/make-change") as client:
            response = client.http.post("/change", json={"amount": "1.89"})
            assert response.status_code == 200
            assert client.invoke("change", {"body": '{"amount": "0.41"}'}).error is None

The server is the real one (`gateway.server.serve`) on a free loopback port, running on
a background thread: the same zygotes, forked and sandboxed instances, timeouts, queues,
schedules and AWS APIs as `skylift up`, with its state in a temporary folder (the app's
`.skylift/` is never touched) and without hot reload.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import tempfile
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import orjson

from skylift.account import region as default_region
from skylift.engine.instance import InvocationResult
from skylift.engine.platform import Platform
from skylift.errors import SkyliftError
from skylift.events import samples
from skylift.loader import resolve_target
from skylift.queues.protocol import OutgoingMessage
from skylift.sources.http import Router

T = TypeVar("T")
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Invocation:
    """One invocation's outcome: `result` is the decoded payload (the error's payload
    when `error` is set, e.g. "Unhandled"), `log` what the function printed."""

    request_id: str
    result: Any
    error: str | None
    log: str
    payload: bytes

    @classmethod
    def of(cls, result: InvocationResult) -> Invocation:
        try:
            decoded = orjson.loads(result.payload)
        except orjson.JSONDecodeError:
            decoded = result.payload.decode("utf-8", "replace")
        log = result.logs.decode("utf-8", "replace")
        return cls(result.request_id, decoded, result.error, log, result.payload)


class Events:
    """Exact AWS events, from the builders `skylift up` uses (`skylift events generate`)."""

    def __init__(self, region: str) -> None:
        self.region = region

    def sqs(self, bodies: list[str], queue: str = "example-queue") -> dict[str, Any]:
        return samples.sqs_batch(list(bodies), samples.Options(self.region, queue=queue))

    def s3(self, bucket: str, key: str, *, size: int = 1024, delete: bool = False) -> Any:
        options = samples.Options(self.region, bucket=bucket, key=key, size=size)
        return samples.s3_delete(options) if delete else samples.s3_put(options)

    def schedule(self, rule: str = "example-schedule") -> dict[str, Any]:
        return samples.schedule(samples.Options(self.region, rule=rule))

    def http(
        self, method: str = "GET", path: str = "/", *, body: str | None = None, rest: bool = False
    ) -> dict[str, Any]:
        options = samples.Options(self.region, method=method, path=path, body=body)
        return samples.apigateway_rest(options) if rest else samples.apigateway_http(options)


class Client:
    """Serve APP (a folder, .py file, template or module:attribute) for a test.

    `env_vars` overrides functions' variables as `--env-vars` does ({"Fn": {"K": "V"}},
    "Parameters" for all); `sandbox=False` turns the instance sandbox off, as
    `--sandbox off` does. Asynchronous retries are fast (`--fast-retries`).
    """

    def __init__(
        self,
        app: str | Path | None = None,
        *,
        template: str | Path | None = None,
        env_vars: dict[str, dict[str, str]] | None = None,
        sandbox: bool = True,
    ) -> None:
        import httpx
        import uvloop

        from skylift.gateway.server import serve

        target = resolve_target(
            None if app is None else str(app), None if template is None else str(template)
        )
        self._state = Path(tempfile.mkdtemp(prefix="skylift-test-"))
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, daemon=True)
        self._thread.start()
        ready: concurrent.futures.Future[tuple[Platform, int]] = concurrent.futures.Future()

        def on_ready(platform: Platform, router: Router, port: int) -> None:
            ready.set_result((platform, port))

        self._stop = asyncio.Event()
        self._serving = asyncio.run_coroutine_threadsafe(
            serve(
                target,
                "127.0.0.1",
                0,
                on_ready=on_ready,
                quiet=True,
                fast_retries=True,
                overrides=env_vars,
                sandbox=sandbox,
                state_dir=self._state,
                stop=self._stop,
                tune_gc=False,
            ),
            self._loop,
        )

        def ended(done: concurrent.futures.Future[None]) -> None:
            if not ready.done():
                ready.set_exception(_failure(done))

        self._serving.add_done_callback(ended)
        try:
            self.platform, port = ready.result(START_TIMEOUT)
        except BaseException:
            self.close()
            raise
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        self.events = Events(self.platform.region or default_region())

    def _run_loop(self) -> None:
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()  # in its own thread: uvloop's close is not thread-safe

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def invoke(self, function: str, payload: Any = None) -> Invocation:
        """Invoke `function` synchronously with `payload` (JSON-able, or bytes)."""
        data = (
            payload
            if isinstance(payload, bytes)
            else orjson.dumps({} if payload is None else payload)
        )
        return Invocation.of(self._run(self.platform.invoker.invoke(function, data)))

    def send(self, queue: str, body: str, *, timeout: float = 30.0) -> Invocation:
        """Send `body` to `queue` and return the invocation its event source mapping made
        of it (the mapping deletes the message right after a success)."""
        sources = self.platform.sources
        mappings = [m for m in sources.mappings if m.trigger.queue == queue] if sources else []
        if not mappings:
            raise SkyliftError(f"no function is triggered by queue {queue!r}")
        seen: concurrent.futures.Future[InvocationResult] = concurrent.futures.Future()
        sent: list[str] = []

        def observe(ids: list[str], result: InvocationResult | None) -> None:
            if result is not None and sent and sent[0] in ids and not seen.done():
                seen.set_result(result)

        async def send() -> None:
            assert self.platform.state is not None
            for mapping in mappings:
                mapping.batch_observers.append(observe)
            (outcome,) = await self.platform.state.queues.send(queue, [OutgoingMessage(body)])
            sent.append(outcome.message_id)

        async def forget() -> None:
            for mapping in mappings:
                mapping.batch_observers.remove(observe)

        try:
            self._run(send())
            return Invocation.of(seen.result(timeout))
        finally:
            self._run(forget())

    def close(self) -> None:
        """Stop the server (its instances and zygotes) and remove its state."""
        if hasattr(self, "http"):
            self.http.close()
        self._loop.call_soon_threadsafe(self._stop.set)  # as Ctrl-C: drain, then close
        try:
            self._serving.result(30)
        except concurrent.futures.TimeoutError:
            self._loop.call_soon_threadsafe(self._serving.cancel)
        except (concurrent.futures.CancelledError, Exception):
            pass  # a failure to start was raised by __init__ already
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        shutil.rmtree(self._state, ignore_errors=True)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _failure(done: concurrent.futures.Future[None]) -> BaseException:
    if done.cancelled():
        return SkyliftError("the server was stopped before it was ready")
    exc = done.exception()
    return exc if exc is not None else SkyliftError("the server ended before it was ready")
