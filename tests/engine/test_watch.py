"""Watching code for hot reload: which changes come through, and that the watch takes
no thread from the server (a thread's every take of the GIL stalls the event loop)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from skylift.engine import watch
from skylift.engine.reload import IGNORED_DIRS, WATCHED_SUFFIXES

pytestmark = pytest.mark.skipif(not watch.available(), reason="inotify is Linux's")


def bursts(root: Path, edits: list[tuple[str, str]], settle: float = 0.3) -> list[set[str]]:
    """The bursts seen while `edits` (relative path, text) are written, one by one."""

    async def scenario() -> list[set[str]]:
        seen: list[set[str]] = []

        async def collect() -> None:
            async for paths in watch.code_changes([str(root)], IGNORED_DIRS, WATCHED_SUFFIXES):
                seen.append({str(Path(p).relative_to(root)) for p in paths})

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.1)
        for path, text in edits:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
            await asyncio.sleep(0.02)
        await asyncio.sleep(settle)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen

    return asyncio.run(scenario())


def test_an_edit_of_code_comes_as_one_burst(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    seen = bursts(tmp_path, [("app.py", "x = 2\n"), ("app.py", "x = 3\n")])
    assert seen and set().union(*seen) == {"app.py"}


def test_code_in_a_new_folder_comes_through(tmp_path):
    seen = bursts(tmp_path, [("pkg/sub/mod.py", "y = 1\n"), ("pkg/sub/mod.py", "y = 2\n")])
    assert {"pkg/sub/mod.py"} <= set().union(*seen)


def test_what_skylift_and_editors_write_wakes_nothing(tmp_path):
    (tmp_path / ".skylift" / "logs").mkdir(parents=True)
    seen = bursts(
        tmp_path,
        [
            (".skylift/logs/change.py", "not code\n"),
            ("__pycache__/app.py", "\n"),
            ("notes.txt", "data\n"),
            (".app.py.swp", "\n"),
        ],
    )
    assert seen == []


def test_watching_starts_no_thread(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")

    async def scenario() -> int:
        before = threading.active_count()
        changes = watch.code_changes([str(tmp_path)], IGNORED_DIRS, WATCHED_SUFFIXES)
        task = asyncio.create_task(anext(changes))
        await asyncio.sleep(0.2)
        during = threading.active_count() - before
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await changes.aclose()
        return during

    assert asyncio.run(scenario()) == 0
