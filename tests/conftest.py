"""Shared fixtures: apps written to temporary directories, and a platform running on a
background event loop with real zygote and worker processes."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from skylift.engine.instance import InvocationResult
from skylift.engine.platform import Platform
from skylift.loader import Target, resolve_target

T = TypeVar("T")


def write_app(directory: Path, source: str, name: str = "app.py") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(source))
    return directory


class LivePlatform:
    """A Platform on its own loop thread, driven synchronously from tests."""

    def __init__(self, target: Target, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.platform: Platform = self.run(Platform.start(target, **options))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def invoke(self, function: str, event: bytes = b"{}") -> InvocationResult:
        return self.run(self.platform.invoker.invoke(function, event))

    def invoke_many(self, function: str, events: list[bytes]) -> list[InvocationResult]:
        async def many() -> list[InvocationResult]:
            return list(
                await asyncio.gather(*(self.platform.invoker.invoke(function, e) for e in events))
            )

        return self.run(many())

    def outcomes(self, function: str, events: list[bytes]) -> list[Any]:
        """Concurrent invocations; each a result or the exception it raised."""

        async def many() -> list[Any]:
            calls = (self.platform.invoker.invoke(function, e) for e in events)
            return list(await asyncio.gather(*calls, return_exceptions=True))

        return self.run(many())

    def close(self) -> None:
        self.run(self.platform.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def live() -> Iterator[Any]:
    """Start platforms for any target; all are closed after the test.

    The instance sandbox is off unless a test asks for it (`sandbox=True`): these tests
    watch instances from the host (their pids, files they write beside their code), which
    the sandbox hides or makes read-only, as Lambda does. tests/engine/test_sandbox.py and
    every test through `skylift up` run with it on.
    """
    started: list[LivePlatform] = []

    def start(
        app: str | Path | None = None, template: str | Path | None = None, **options: Any
    ) -> LivePlatform:
        target = resolve_target(
            str(app) if app is not None else None, str(template) if template else None
        )
        options.setdefault("sandbox", False)
        platform = LivePlatform(target, **options)
        started.append(platform)
        return platform

    yield start
    for platform in started:
        platform.close()


@pytest.fixture(scope="session")
def lambda_client() -> Callable[[str], Any]:
    """Makes the real boto3 `lambda` client for a server's URL (no retries, so a throttle
    or an error reaches the test as the SDK raises it)."""
    import boto3  # type: ignore[import-untyped]  # boto3 ships no type hints
    from botocore.config import Config  # type: ignore[import-untyped]

    def make(url: str) -> Any:
        return boto3.client(
            "lambda",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 0}),
        )

    return make


@pytest.fixture(scope="session")
def aws_cli() -> Callable[..., Any]:
    """Runs the real AWS CLI (awscli, in the test extras) against a server's URL with fake
    keys and no config or credentials files, so it can never reach real AWS; returns its
    JSON answer. Example: ``aws_cli(url, "lambda", "list-functions")``."""
    import json
    import os
    import subprocess
    import sys

    def run(url: str, *args: str) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=url,
            AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
            AWS_SECRET_ACCESS_KEY="not-a-real-secret",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )
        cli = Path(sys.executable).parent / "aws"
        done = subprocess.run(
            [str(cli), *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    return run
