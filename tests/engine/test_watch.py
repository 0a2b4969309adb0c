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


def test_a_save_made_while_the_last_burst_is_handled_comes_next(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")

    async def scenario() -> list[set[str]]:
        seen: list[set[str]] = []
        changes = watch.code_changes([str(tmp_path)], IGNORED_DIRS, WATCHED_SUFFIXES)
        writer = asyncio.get_running_loop()
        writer.call_later(0.1, (tmp_path / "a.py").write_text, "x = 2\n")
        first = await asyncio.wait_for(anext(changes), 5)
        seen.append({Path(p).name for p in first})
        # Handling it (a reload) takes a while; a save lands meanwhile.
        await asyncio.sleep(0.1)
        (tmp_path / "b.py").write_text("y = 1\n")
        await asyncio.sleep(0.3)
        second = await asyncio.wait_for(anext(changes), 2)  # not only at the next save
        seen.append({Path(p).name for p in second})
        await changes.aclose()
        return seen

    assert asyncio.run(scenario()) == [{"a.py"}, {"b.py"}]


def test_code_in_a_symlinked_folder_comes_through(tmp_path):
    shared = tmp_path / "elsewhere" / "shared"
    shared.mkdir(parents=True)
    (shared / "lib.py").write_text("z = 1\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "shared").symlink_to(shared, target_is_directory=True)
    (shared / "loop").symlink_to(app, target_is_directory=True)  # a cycle: watched once
    seen = bursts(app, [("shared/lib.py", "z = 2\n")])
    assert seen and set().union(*seen) == {"shared/lib.py"}


def test_a_folder_moved_out_of_the_tree_is_no_longer_watched(tmp_path):
    app, outside = tmp_path / "app", tmp_path / "outside"
    (app / "pkg").mkdir(parents=True)
    outside.mkdir()

    async def scenario() -> list[set[str]]:
        seen: list[set[str]] = []

        async def collect() -> None:
            async for paths in watch.code_changes([str(app)], IGNORED_DIRS, WATCHED_SUFFIXES):
                seen.append(set(paths))

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.1)
        (app / "pkg").rename(outside / "pkg")
        await asyncio.sleep(0.2)
        (outside / "pkg" / "x.py").write_text("moved = True\n")
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen

    assert asyncio.run(scenario()) == []
