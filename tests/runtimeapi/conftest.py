"""Runtime API tests run on both loops the supervisor may use: asyncio's own and uvloop."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from skylift.runtimeapi import RuntimeApiInstance
from skylift.spec import FunctionSpec

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run[Any]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run(coro: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(asyncio.wait_for(coro, 20))

    return run


@pytest.fixture
def write_code() -> Callable[[Path, str, str], Path]:
    """Write `source` (dedented) to `directory / name`."""

    def write(directory: Path, name: str, source: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        path.write_text(textwrap.dedent(source))
        return path

    return write


@pytest.fixture
def running() -> Callable[..., AbstractAsyncContextManager[RuntimeApiInstance]]:
    """`async with running(spec, command) as instance`: closed and reaped at the end."""
    return _running


@asynccontextmanager
async def _running(
    spec: FunctionSpec, command: list[str], cwd: str | None = None
) -> AsyncIterator[RuntimeApiInstance]:
    instance = await RuntimeApiInstance.start(spec, command, cwd or spec.code_dir)
    try:
        yield instance
    finally:
        instance.close()
        await instance.wait()
