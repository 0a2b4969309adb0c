"""Watching the code folders for hot reload on Linux: inotify, read by the event loop.

watchfiles, which `reload.py` falls back to elsewhere, polls from a thread every step
(10 ms) and takes the GIL each time; under load every take stalls the server's loop
until that thread is scheduled and done, and a wait for the GIL lets the scheduler give
the loop's core away. Measured with `perf sched` under wrk -c32: the watcher's thread
ran 650-1,100 times a second and put the loop to sleep 45-68 times a second, up to
7.5 ms (docs/benchmarks.md). Here the loop reads inotify's descriptor itself: no thread, no
work while nothing changes, and the folders skylift writes to (`.skylift`) are not
watched at all, so its own logs and state wake nothing. inotify itself is
inotify_simple's (a small, well-kept wrapper of the three system calls); what is
skylift's own here is watching a tree as it grows and collecting a burst.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable

from inotify_simple import INotify, flags

logger = logging.getLogger("skylift.reload")

_MASK = (
    flags.MODIFY
    | flags.CLOSE_WRITE
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.CREATE
    | flags.DELETE
    | flags.ONLYDIR
)

QUIET = 0.01  # seconds without a new change that end a burst (watchfiles' step)
DEBOUNCE = 0.05  # ... and the longest a burst is collected (watchfiles' debounce)


def available() -> bool:
    """Whether this module can watch here (Linux has inotify)."""
    return sys.platform.startswith("linux")


class Inotify:
    """Watches folder trees, leaving out the folders named in `ignored_dirs`
    (inotify_simple's `INotify`, non-blocking, read when the event loop sees it ready)."""

    def __init__(self, ignored_dirs: Iterable[str]) -> None:
        self._inotify = INotify(nonblocking=True)
        self.fd: int = self._inotify.fileno()
        self._ignored = frozenset(ignored_dirs)
        self._folders: dict[int, str] = {}  # watch descriptor -> folder

    def add_tree(self, root: str) -> list[str]:
        """Watch `root` and the folders under it, symlinked ones included (each real
        folder once); the files found in them."""
        found: list[str] = []
        seen: set[tuple[int, int]] = set()
        for folder, subdirs, files in os.walk(root, followlinks=True):
            try:
                info = os.stat(folder)
            except OSError:
                subdirs[:] = []
                continue
            if (info.st_dev, info.st_ino) in seen:  # a link back up the tree
                subdirs[:] = []
                continue
            seen.add((info.st_dev, info.st_ino))
            subdirs[:] = [d for d in subdirs if d not in self._ignored]
            self._add(folder)
            found.extend(os.path.join(folder, name) for name in files)
        return found

    def drop_tree(self, root: str) -> None:
        """Stop watching `root` and the folders under it (moved out of the tree)."""
        for wd, folder in list(self._folders.items()):
            if folder == root or folder.startswith(root + os.sep):
                del self._folders[wd]
                try:
                    self._inotify.rm_watch(wd)
                except OSError:
                    pass  # gone already

    def _add(self, folder: str) -> None:
        try:
            self._folders[self._inotify.add_watch(folder, _MASK)] = folder
        except OSError as exc:
            if exc.errno == 28:  # ENOSPC: fs.inotify.max_user_watches is reached
                raise OSError(
                    28, f"cannot watch {folder}: raise fs.inotify.max_user_watches"
                ) from exc
            # Gone or unreadable meanwhile: nothing to reload from there.

    def read(self) -> list[str] | None:
        """The paths changed since the last read; None when the kernel's queue overflowed
        (changes were lost: the caller reloads anyway)."""
        paths: list[str] = []
        for event in self._inotify.read(timeout=0):
            if event.mask & flags.Q_OVERFLOW:
                return None
            if event.mask & flags.IGNORED:
                self._folders.pop(event.wd, None)
                continue
            folder = self._folders.get(event.wd)
            if folder is None or not event.name:
                continue
            path = os.path.join(folder, event.name)
            if event.mask & flags.ISDIR:
                if event.mask & (flags.CREATE | flags.MOVED_TO) and event.name not in self._ignored:
                    # Files may have landed in it before its watch was added.
                    paths.extend(self.add_tree(path))
                elif event.mask & flags.MOVED_FROM:  # out of the tree, or back in by MOVED_TO
                    self.drop_tree(path)
                continue
            paths.append(path)
        return paths

    def close(self) -> None:
        if self.fd >= 0:
            self._inotify.close()
            self.fd = -1


async def changes(
    roots: Iterable[str], ignored_dirs: Iterable[str], wanted: Callable[[str], bool]
) -> AsyncIterator[set[str]]:
    """The `wanted` paths changed under `roots`, a burst at a time: a burst ends after
    `QUIET` seconds without a change, or `DEBOUNCE` seconds after it began. A lost
    queue of changes (the kernel's overflow) comes as an empty set."""
    loop = asyncio.get_running_loop()
    watcher = Inotify(ignored_dirs)
    pending: set[str] = set()
    lost = False
    last = 0.0  # when the last wanted change came
    woken: asyncio.Future[None] | None = None

    def readable() -> None:
        nonlocal lost, last
        paths = watcher.read()
        if paths is None:
            lost = True
            try:
                for root in roots:  # folders made while changes were lost are watched too
                    watcher.add_tree(root)
            except OSError as exc:
                logger.warning("skylift: watching %s again failed: %s", roots, exc)
        else:
            paths = [p for p in paths if wanted(p)]
            if not paths:
                return
            pending.update(paths)
        last = time.monotonic()
        if woken is not None and not woken.done():
            woken.set_result(None)

    roots = list(roots)
    try:
        for root in roots:
            watcher.add_tree(root)
        loop.add_reader(watcher.fd, readable)
        while True:
            woken = loop.create_future()
            if not (pending or lost):  # what came while the last burst was handled is next
                await woken
            began = time.monotonic()
            while True:  # collect the burst
                now = time.monotonic()
                wait = min(last + QUIET, began + DEBOUNCE) - now
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            burst, lost_any = set(pending), lost
            pending.clear()
            lost = False
            if burst or lost_any:
                yield burst
    finally:
        if watcher.fd >= 0:
            loop.remove_reader(watcher.fd)
        watcher.close()


async def code_changes(
    roots: list[str], ignored_dirs: Iterable[str], suffixes: tuple[str, ...]
) -> AsyncIterator[set[str]]:
    """Bursts of changed paths ending in `suffixes` under `roots`, outside
    `ignored_dirs` and watchfiles' own (`.git`, `__pycache__`...) and temporary files:
    with inotify (`changes`) on Linux, else (or past the inotify watch limit) polled by
    watchfiles."""
    from watchfiles import Change, DefaultFilter, awatch

    every_ignored = (*DefaultFilter.ignore_dirs, *ignored_dirs)
    ignored = DefaultFilter(ignore_dirs=every_ignored)

    def watched(change: Change, path: str) -> bool:
        return path.endswith(suffixes) and ignored(change, path)

    if available():
        try:
            async for paths in changes(
                roots, every_ignored, lambda path: watched(Change.modified, path)
            ):
                yield paths
            return
        except OSError as exc:
            logger.warning("skylift: watching with inotify failed (%s); polling instead", exc)
    async for found in awatch(*roots, watch_filter=watched, debounce=50, step=10, recursive=True):
        yield {path for _, path in found}
